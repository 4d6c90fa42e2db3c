"""The Anthropic Messages front door: POST …/v1/messages and …/v1/messages/count_tokens, and
GET …/v1/models[/{id}] (the chat models this key may use, as Anthropic's model objects).

A translator over the canonical request, never a second money path: the body is checked,
translated to Chat Completions (llm.dialects.anthropic_request) and run through the same
prepare → gateway → finish as /v1/openai/chat/completions, so holds, settles, usage rows and
prices are identical. For a model with an Anthropic route the original body rides along
(ChatRequest.anthropic) and that route forwards it as sent. Errors use Anthropic's envelope
(gpuniq_site.errors.anthropic_envelope, chosen by path).
"""

from django.views.decorators.http import require_GET, require_POST

from accounts.guard import key_required, key_required_overlapped
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import json_response

from .. import chat
from ..catalog import ModelInfo, asnapshot
from ..dialects import anthropic_reply, anthropic_request
from ..gateway import ordered_routes, to_api_error
from ..providers.base import AnthropicOriginal, ChatRequest, UpstreamError
from ..providers.registry import provider_for
from ..tokens import counted_prompt_tokens
from ..validation import parse_body
from ..completions import complete_once, overhead_header, start_stream
from ..completions import sandbox_headers as _headers


def _is_claude(model: ModelInfo) -> bool:
    return any(route.provider == "anthropic" for route in model.routes)


def _original(request, body: dict) -> AnthropicOriginal:
    headers = {
        name: request.headers[name]
        for name in ("anthropic-beta", "anthropic-version")
        if request.headers.get(name)
    }
    return AnthropicOriginal(body=body, headers=headers, beta=request.GET.get("beta") == "true")


async def _translate(
    request, body: dict, *, lenient: bool = False, endpoint: str = "anthropic_messages"
) -> tuple[dict, ModelInfo]:
    anthropic_request.check(body)
    slug = body["model"]
    if not isinstance(slug, str) or not slug or len(slug) > 100:
        raise ApiError(
            "invalid_parameter", field="model", reason="must be a model slug", meta={"field": "model"}
        )
    model = await chat.resolve_model(slug, request.principal, endpoint=endpoint)
    return anthropic_request.to_chat(body, model, lenient=lenient or _is_claude(model)), model


@require_POST
@key_required_overlapped
async def messages(request):
    body = parse_body(request.body)
    chat_body, model = await _translate(request, body)
    request.metric_model = model.slug
    anthropic_request.check_billable(body)
    prepared = await chat.prepare(
        request.principal,
        chat_body,
        request_id=request.request_id,
        endpoint="anthropic_messages",
        anthropic=_original(request, body) if _is_claude(model) else None,
    )
    if prepared.request.stream:
        prepared.request.include_usage = True  # the closing message_delta carries the exact usage
        response = await start_stream(prepared, parsed=True)
        translator = anthropic_reply.StreamTranslator(
            model.slug, counted_prompt_tokens(prepared.request.body)
        )
        response.streaming_content = anthropic_reply.anthropic_events(response.chunks, translator)
        return response
    completion, usage, settled, route = await complete_once(prepared)
    message = anthropic_reply.message_from_chat(completion, usage, model.slug)
    headers = {
        **_headers(route),
        **overhead_header(request, prepared),
        "x-gpuniq-cost-usd": str(settled.cost),
    }
    return json_response(message, headers=headers)


@require_POST
@key_required
async def count_tokens(request):
    """Free, like Anthropic's: the vendor's own count for Claude models, else the gateway's count
    (o200k_base: exact for OpenAI's models, an estimate for others)."""
    body = parse_body(request.body)
    body.setdefault("max_tokens", 1)  # count_tokens takes no max_tokens; check() wants one
    # a count never refuses a server tool
    chat_body, model = await _translate(request, body, lenient=True, endpoint="anthropic_count_tokens")
    tokens = None
    if _is_claude(model):
        tokens = await _vendor_count(request, body, model)
    if tokens is None:
        tokens = counted_prompt_tokens(chat_body)
    return json_response({"input_tokens": tokens})


async def _vendor_count(request, body: dict, model: ModelInfo) -> int | None:
    """Anthropic's count through the first healthy Anthropic route; None when none can answer."""
    from ..providers import anthropic_native

    canonical = ChatRequest(
        body={},
        slug=model.slug,
        stream=False,
        request_id=request.request_id,
        first_byte_timeout=30.0,
        anthropic=_original(request, body),
    )
    for route in await ordered_routes(model):
        upstream = getattr(provider_for(route), "upstream", None)
        if route.provider != "anthropic" or upstream is None:
            continue
        try:
            return await anthropic_native.count_tokens(upstream, canonical, route)
        except UpstreamError as error:
            if error.kind in ("bad_request", "context_length"):
                raise to_api_error(error, model.slug) from None
    return None


CREATED_AT = "2025-01-01T00:00:00Z"  # Anthropic's model object needs a date; ours is fixed


def _model_object(model: ModelInfo) -> dict:
    return {"type": "model", "id": model.slug, "display_name": model.name, "created_at": CREATED_AT}


async def _usable(principal) -> list[ModelInfo]:
    snap = await asnapshot()
    return [m for m in snap.models.values() if m.kind == "chat" and m.available and principal.may_use(m.slug)]


@require_GET
@key_required
async def models(request):
    """Anthropic's list object (one page: every usable chat model)."""
    data = [_model_object(m) for m in await _usable(request.principal)]
    return json_response(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


@require_GET
@key_required
async def model(request, model_id: str):
    found = next((m for m in await _usable(request.principal) if m.slug == model_id), None)
    if found is None:
        raise ApiError("model_not_found", model=model_id, meta={"model": model_id})
    return json_response(_model_object(found))
