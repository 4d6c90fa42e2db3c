"""One turn of a persistent chat: validate the message, fit the stored history into the model's
context window, and store the user turn and the reply once the reply is paid for.

Money is exactly a plain completion's (llm.chat.prepare holds, llm.chat.finish settles and
writes the usage row); this module only builds the upstream messages and records the turn.

Context window: the system prompt and the new message always go; stored messages are added
newest first while they fit in `context_window - reserved output - system - new message`;
the rest (the oldest) are left out, and the reply's `truncated_turns` says how many stored
messages were. The kept history always starts with a user message. An image turn
(llm.chat_images) is sent as assistant text: its stand-in content, "[image generated: <prompt>]".

Streams: the turn is stored when the stream ends normally (before its final `[DONE]` event
reaches the client), with the tokens and cost of its usage row. A stream stopped from the page
(llm.chat_stop) or abandoned is billed for what was produced (llm.streaming); the web chat keeps
its partial reply, marked stopped, the API does not; a stream that fails leaves no turn.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, overload

from django.db import transaction
from django.db.models import Q

from billing.models import UsageLog
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError

from . import chats
from .catalog import ModelInfo
from .models import Chat, ChatMessage
from .providers.base import SSE_DONE, Usage
from .chat import run_to_completion

log = logging.getLogger("gpuniq.chat_turns")
MAX_MESSAGE_CHARS = 1_000_000
DEFAULT_OUTPUT_RESERVE = 4096
FRAMING_TOKENS = 64  # kept free for the role framing vendors add around messages
_OPTIONS = ("temperature", "max_tokens", "top_p", "stream", "reasoning_effort")
STOP_CHECK_SECONDS = 0.25  # how often a streaming web-chat reply looks for a stop from the page


def estimate_tokens(text: str) -> int:
    """Generous for trimming history to the context window: ~3 characters a token."""
    return len(text) // 3 + 8


@overload
def clean_text(value: object, name: str, *, required: Literal[True], max_chars: int) -> str: ...
@overload
def clean_text(value: object, name: str, *, required: bool, max_chars: int) -> str | None: ...
def clean_text(value: object, name: str, *, required: bool, max_chars: int) -> str | None:
    """A string field without NUL or lone surrogates (which no database stores)."""
    if value is None:
        if required:
            raise ApiError("missing_parameter", field=name, meta={"field": name})
        return None
    if not isinstance(value, str):
        raise ApiError("invalid_parameter", field=name, reason="must be a string", meta={"field": name})
    if required and not value.strip():
        raise ApiError("invalid_parameter", field=name, reason="must not be empty", meta={"field": name})
    if len(value) > max_chars:
        raise ApiError(
            "invalid_parameter", field=name, reason=f"at most {max_chars} characters", meta={"field": name}
        )
    if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ApiError(
            "invalid_parameter",
            field=name,
            reason="contains characters that cannot be stored",
            meta={"field": name},
        )
    return value


@dataclass
class TurnInput:
    message: str
    model: str | None
    options: dict = field(default_factory=dict)  # temperature, max_tokens, top_p, stream (checked by prepare)


def parse_turn(body: dict) -> TurnInput:
    message = clean_text(body.get("message"), "message", required=True, max_chars=MAX_MESSAGE_CHARS)
    model = clean_text(body.get("model"), "model", required=False, max_chars=100) or None
    return TurnInput(message, model, {k: body[k] for k in _OPTIONS if body.get(k) is not None})


@dataclass
class TurnPlan:
    chat_id: int
    model: str
    message: str
    body: dict  # the Chat Completions body for llm.chat.prepare
    truncated: int


def _fit(rows, budget: int | None) -> list[tuple[str, str]]:
    """Stored (role, content, tokens) rows, newest first → the newest that fit, oldest first."""
    kept, used = [], 0
    for role, content, tokens in rows:
        if budget is not None and used + tokens > budget:
            break
        kept.append((role, content))
        used += tokens
    kept.reverse()
    while kept and kept[0][0] != ChatMessage.USER:
        kept.pop(0)
    return kept


def plan_turn(chat: Chat, model: ModelInfo, turn: TurnInput) -> TurnPlan:
    # image turns go as their stand-in text (llm.chat_images); vendors refuse empty turns
    stored = ChatMessage.objects.filter(
        Q(kind=ChatMessage.TEXT, status=ChatMessage.COMPLETED) | Q(kind=ChatMessage.IMAGE), chat_id=chat.pk
    ).exclude(content="")
    budget = None
    if model.context_window:
        reserve = turn.options.get("max_tokens") or min(
            model.max_output or DEFAULT_OUTPUT_RESERVE, DEFAULT_OUTPUT_RESERVE
        )
        reserve = reserve if isinstance(reserve, int) else DEFAULT_OUTPUT_RESERVE
        fixed = estimate_tokens(turn.message) + FRAMING_TOKENS
        fixed += estimate_tokens(chat.system_prompt) if chat.system_prompt else 0
        budget = max(0, model.context_window - reserve - fixed)
    rows = stored.order_by("-id").values_list("role", "content", "tokens").iterator(chunk_size=200)
    kept = _fit(rows, budget)
    messages = [{"role": "system", "content": chat.system_prompt}] if chat.system_prompt else []
    messages += [{"role": role, "content": content} for role, content in kept]
    messages.append({"role": "user", "content": turn.message})
    body = {**turn.options, "model": model.slug, "messages": messages}
    return TurnPlan(chat.pk, model.slug, turn.message, body, truncated=stored.count() - len(kept))


@dataclass
class Reply:
    content: str
    finish_reason: str
    usage: Usage
    cost: Decimal
    request_id: str


def store_turn(plan: TurnPlan, reply: Reply) -> tuple[int, int] | None:
    """Write the user turn and the reply together; (user id, reply id), or None if the chat is gone."""
    with transaction.atomic():
        if not chats.touch(plan.chat_id):
            log.info(
                "chat %s was deleted before its reply was stored (request %s)", plan.chat_id, reply.request_id
            )
            return None
        user = ChatMessage.objects.create(
            chat_id=plan.chat_id,
            role=ChatMessage.USER,
            content=plan.message,
            model=plan.model,
            tokens=estimate_tokens(plan.message),
            request_id=reply.request_id,
        )
        usage = reply.usage
        answer = ChatMessage.objects.create(
            chat_id=plan.chat_id,
            role=ChatMessage.ASSISTANT,
            content=reply.content,
            model=plan.model,
            tokens=estimate_tokens(reply.content),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=reply.cost,
            finish_reason=reply.finish_reason or "",
            truncated_turns=plan.truncated,
            request_id=reply.request_id,
        )
    return user.pk, answer.pk


def store_streamed_turn(plan: TurnPlan, user_id: int, request_id: str, content: str, finish_reason: str):
    """Store a streamed turn with the tokens and cost of its usage row (written before [DONE])."""
    row = (
        UsageLog.objects.filter(user_id=user_id, request_id=request_id, endpoint="chat_session")
        .order_by("-id")
        .first()
    )
    usage = (
        Usage(row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.reasoning_tokens)
        if row
        else Usage()
    )
    cost = row.cost_usd if row else Decimal(0)
    return store_turn(plan, Reply(content, finish_reason, usage, cost, request_id))


class _StreamText:
    """Collects the reply text from the OpenAI-framed SSE events the gateway sends."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason = ""
        self.failed = False

    def feed(self, chunk: bytes) -> None:
        for event in chunk.split(b"\n\n"):
            if not event.startswith(b"data: {"):
                continue
            try:
                obj = json.loads(event[6:])
            except ValueError:
                continue
            if "error" in obj:
                self.failed = True
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    self.parts.append(delta["content"])
                self.finish_reason = choice.get("finish_reason") or self.finish_reason


STOPPED = "stopped"  # finish_reason of a turn stopped from the page (or abandoned by the client)


async def _store_once(plan: TurnPlan, user_id: int, request_id: str, text: "_StreamText", finish_reason: str):
    store = run_db(store_streamed_turn, plan, user_id, request_id, "".join(text.parts), finish_reason)
    try:
        await asyncio.shield(run_to_completion(store))
    except Exception:  # the reply was delivered and paid for; the client still gets its ending
        log.exception("storing streamed turn of chat %s failed (request %s)", plan.chat_id, request_id)


_END = object()


async def _pull(events):
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        return _END


async def _next_or_stop(events, stop_requested):
    """The next chunk, _END at the end, or None once a stop was asked for. The pending read is then
    cancelled, which is exactly a client disconnect to llm.streaming (bill what was produced)."""
    pending = asyncio.ensure_future(_pull(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=STOP_CHECK_SECONDS)
            if done:
                return pending.result()
            if await stop_requested():
                break
    finally:
        if not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    return None


async def record_stream(content, plan: TurnPlan, user_id: int, request_id: str, stop_requested=None):
    """Pass a streamed reply through; store the turn when it ends well, before [DONE] is sent.

    Stopped (`stop_requested()` turned true, checked even while the vendor is silent) or
    abandoned: the upstream stream is closed first, so llm.streaming settles the hold for what
    was produced and writes the usage row. The web chat (which passes `stop_requested`) then keeps
    the partial turn, marked stopped, with that row's tokens and cost; the API stores no turn."""
    text = _StreamText()
    stored = stopped = False
    events = content.__aiter__()
    try:
        while True:
            if stop_requested is not None and not stored:
                chunk = await _next_or_stop(events, stop_requested)
            else:
                chunk = await _pull(events)
            if chunk is _END:
                break
            if chunk is None:
                stopped = True
                break
            if chunk == SSE_DONE and not text.failed:
                await _store_once(plan, user_id, request_id, text, text.finish_reason)
                stored = True
            else:
                text.feed(chunk)
            yield chunk
    finally:
        await content.aclose()
        if stop_requested is not None and not stored and not text.failed and text.parts:
            await _store_once(plan, user_id, request_id, text, STOPPED)  # the web chat keeps what it showed
    if stopped:
        yield SSE_DONE
