"""Stored responses (`store: true`, the default): kept per user, read back, deleted, continued.

A continued conversation (`previous_response_id`) is the stored input items of the previous
response, then its output items, then the new input: what OpenAI documents for conversation
state. Instructions are not carried over (OpenAI neither)."""

from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import could_be_id

from ...models import StoredResponse

# output item types a later request can take back as input
_CARRIED = {"message", "function_call", "reasoning"}


def _not_found(response_id: str, field: str | None = None) -> ApiError:
    meta = {"response_id": response_id[:80], **({"field": field} if field else {})}
    return ApiError("response_not_found", response_id=response_id[:80], meta=meta)


def _get(user_id: int, response_id: str) -> StoredResponse | None:
    if not could_be_id(response_id, prefix="resp_"):
        return None
    return StoredResponse.objects.filter(pk=response_id, user_id=user_id).first()


async def history(user_id: int, response_id) -> list:
    """The input items a request continuing `response_id` starts from (404 if not the user's)."""
    if not isinstance(response_id, str) or not response_id:
        raise ApiError(
            "invalid_parameter",
            field="previous_response_id",
            reason="must be a response id",
            meta={"field": "previous_response_id"},
        )
    found = await run_db(_get, user_id, response_id)
    if found is None:
        raise _not_found(response_id, "previous_response_id")
    output = [item for item in found.response.get("output") or () if item.get("type") in _CARRIED]
    return list(found.input_items) + output


def _save(user_id: int, response: dict, items: list) -> None:
    StoredResponse.objects.create(
        id=response["id"],
        user_id=user_id,
        model=response.get("model") or "",
        input_items=items,
        response=response,
    )


async def save(user_id: int, response: dict, items: list) -> None:
    await run_db(_save, user_id, response, items)


async def read(user_id: int, response_id: str) -> dict:
    found = await run_db(_get, user_id, response_id)
    if found is None:
        raise _not_found(response_id)
    return found.response


async def input_items(user_id: int, response_id: str) -> list:
    found = await run_db(_get, user_id, response_id)
    if found is None:
        raise _not_found(response_id)
    return list(found.input_items)


def _delete(user_id: int, response_id: str) -> int:
    if not could_be_id(response_id, prefix="resp_"):
        return 0
    return StoredResponse.objects.filter(pk=response_id, user_id=user_id).delete()[0]


async def delete(user_id: int, response_id: str) -> None:
    if not await run_db(_delete, user_id, response_id):
        raise _not_found(response_id)
