"""POST /v1/openai/chat/completions (raw OpenAI objects) and POST /v1/llm/chat/completions (wrapped)."""

from django.views.decorators.http import require_POST

from accounts.guard import key_required_overlapped
from gpuniq_site.responses import json_response, native_ok

from .. import chat
from ..catalog import DEFAULT_CHAT_MODEL
from ..completions import complete_once, native_reply, overhead_header, sandbox_headers, start_stream
from ..validation import parse_body


@require_POST
@key_required_overlapped
async def openai_chat_completions(request):
    body = parse_body(request.body)
    prepared = await chat.prepare(request.principal, body, request_id=request.request_id, endpoint="chat")
    request.metric_model = prepared.model.slug
    if prepared.request.stream:
        return await start_stream(prepared)
    response, usage, settled, route = await complete_once(prepared)
    response["usage"] = {
        **usage.to_openai(),
        **(response.get("usage") or {}),
        "cost_usd": float(settled.cost),
    }
    return json_response(response, headers={**sandbox_headers(route), **overhead_header(request, prepared)})


@require_POST
@key_required_overlapped
async def native_chat_completions(request):
    body = parse_body(request.body)
    prepared = await chat.prepare(
        request.principal,
        body,
        request_id=request.request_id,
        endpoint="native_chat",
        default_model=DEFAULT_CHAT_MODEL,
    )
    request.metric_model = prepared.model.slug
    if prepared.request.stream:
        prepared.request.include_usage = True
        return await start_stream(prepared)
    response, usage, settled, route = await complete_once(prepared)
    return native_ok(
        request,
        native_reply(response, usage, settled, prepared.model.slug),
        headers={**sandbox_headers(route), **overhead_header(request, prepared)},
    )
