"""POST /v1/openai/responses, GET / DELETE /v1/openai/responses/{id} and its input items.

Thin: parse, expand the stored conversation, run the canonical chat request through the same
prepare → gateway → finish path as Chat Completions (so billing is identical), render."""

from django.views.decorators.http import require_http_methods, require_POST

from accounts.guard import key_required, key_required_overlapped
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import EventStreamResponse, json_response

from ... import chat
from ...validation import parse_body
from ...completions import sandbox_headers
from ...completions import complete_once, overhead_header, start_stream
from . import reply, store
from . import request as translate
from .events import ResponseEvents
from .relay import Relay

ENDPOINT = "responses"
_UNCOUNTED = "x_gpuniq_responses_only"


def _check(body: dict) -> None:
    for name in ("stream", "store", "background"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise ApiError(
                "invalid_parameter", field=name, reason="must be true or false", meta={"field": name}
            )
    if body.get("background"):
        raise ApiError(
            "unsupported_parameter",
            field="background",
            model=str(body.get("model")),
            reason="background responses are not supported; stream instead",
            meta={"field": "background"},
        )
    if body.get("input") in (None, "", []):
        raise ApiError("missing_parameter", field="input", meta={"field": "input"})


def _forwarded(body: dict, items: list) -> dict:
    """The body OpenAI's own Responses API gets: our conversation expanded, our storage kept here,
    no hosted tool (translate.vendor_tools)."""
    out = {
        k: v for k, v in body.items() if k not in ("previous_response_id", "store", "tools", "tool_choice")
    }
    out.update(translate.vendor_tools(body))
    out["input"] = [
        i
        for i in items
        if not (isinstance(i, dict) and i.get("type") == "reasoning" and not i.get("encrypted_content"))
    ]
    out["store"] = False
    return out


@require_POST
@key_required_overlapped
async def create_response(request):
    body = parse_body(request.body)
    _check(body)
    user_id = request.principal.user_id
    history = (
        await store.history(user_id, body["previous_response_id"]) if body.get("previous_response_id") else []
    )
    items = history + translate.input_items(body)
    canonical = translate.chat_body(body, history)
    extra = translate.uncounted(body, items)
    if extra:  # the hold covers what the OpenAI pass-through would send; no vendor gets this key
        canonical[_UNCOUNTED] = extra
    prepared = await chat.prepare(
        request.principal,
        canonical,
        request_id=request.request_id,
        endpoint=ENDPOINT,
        output_field="max_output_tokens",
    )
    request.metric_model = prepared.model.slug
    prepared.request.body.pop(_UNCOUNTED, None)
    prepared.request.responses_body = _forwarded(body, items)
    keep = body.get("store", True)
    shell = reply.shell(
        body, response_id=reply.new_id("resp"), slug=prepared.model.slug, status="in_progress"
    )

    async def on_done(response: dict) -> None:
        if keep:
            await store.save(user_id, response, items)

    if prepared.request.stream:
        prepared.request.include_usage = True
        inner = await start_stream(prepared, parsed=True)
        relay = Relay(ResponseEvents(shell), on_done)
        outer = EventStreamResponse(relay.run(inner.chunks))
        if inner.has_header("x-gpuniq-simulated"):
            outer["x-gpuniq-simulated"] = "true"
        return outer
    done, usage, settled, route = await complete_once(prepared)
    if done.get("object") == "response":  # OpenAI's own Responses API answered (the pass-through)
        response = {**done, **{k: shell.get(k) for k in reply.OURS}}
        if isinstance(response.get("usage"), dict):
            response["usage"] = {**response["usage"], "cost_usd": float(settled.cost)}
    else:
        response = reply.from_chat(
            body, done, response_id=shell["id"], slug=prepared.model.slug, usage=usage, cost=settled.cost
        )
    await on_done(response)
    return json_response(response, headers={**sandbox_headers(route), **overhead_header(request, prepared)})


@require_http_methods(["GET", "DELETE"])
@key_required
async def response_detail(request, response_id: str):
    user_id = request.principal.user_id
    if request.method == "DELETE":
        await store.delete(user_id, response_id)
        return json_response({"id": response_id, "object": "response", "deleted": True})
    return json_response(await store.read(user_id, response_id))


@require_http_methods(["GET"])
@key_required
async def response_input_items(request, response_id: str):
    items = await store.input_items(request.principal.user_id, response_id)
    data = [
        {"id": item.get("id") or f"item_{response_id[5:]}_{n}", **item}
        for n, item in enumerate(items)
        if isinstance(item, dict)
    ]
    if request.GET.get("order", "desc") == "desc":
        data.reverse()
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
    )
