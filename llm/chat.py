"""One chat completion's money and bookkeeping: authorize and hold before the upstream call,
settle and log after. Used by the OpenAI-compatible and native surfaces and by chat jobs.

Guarantees: the hold is an upper bound of what the vendor can bill for the request as sent
(llm/bounds.py), taken together with the key's monthly cap; every hold taken here is settled (at
the exact cost from upstream usage, or for a stream cut short, the prompt the vendor received
plus the output produced) or released, and exactly one usage row is written — also for a
request refused for money or permission.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from accounts import gate
from accounts.keys import Principal
from billing import ledger, metering
from billing.models import Account
from billing.money import format_usd
from billing.pricing import TokenPrices, TokenUsage, chat_cost, chat_worst_case
from gpuniq_site.db import run_db, uses_postgres
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import unique_hex
from gpuniq_site.logs import request_id_var

from .bounds import ChatBound, chat_bound
from .catalog import ModelInfo, asnapshot
from .providers.base import AnthropicOriginal, ChatRequest, Route, StreamPiece, Usage, text_of
from .tokens import counted_prompt_tokens
from .validation import validate_chat

log = logging.getLogger("gpuniq.chat")
_background: set[asyncio.Task] = set()


@dataclass
class Prepared:
    principal: Principal
    model: ModelInfo
    request: ChatRequest
    hold_id: int
    bound: ChatBound
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0
    # the hold's idempotency key: the settle names the hold by both (pg_ledger.THIS_HOLD)
    hold_key: str | None = None


def prices(model: ModelInfo) -> TokenPrices:
    tier = model.long_context
    long = None
    if tier:
        cached = tier.get("cached_input")
        long = TokenPrices(
            Decimal(tier["input"]), Decimal(tier["output"]), Decimal(cached) if cached else None
        )
    return TokenPrices(
        input=model.input_per_mtok or Decimal(0),
        output=model.output_per_mtok or Decimal(0),
        cached_input=model.cached_input_per_mtok,
        above=int(tier["above"]) if tier else None,
        long=long,
    )


async def hold_for(
    principal: Principal, amount: Decimal, request_id: str, purpose: str, *, model: str = ""
) -> tuple[int, str]:
    """Hold `amount` for this key's request, within its balance and monthly cap, or raise the
    catalog error that says why not (and log the refused request, at cost 0). Answers the hold's
    id and idempotency key.

    A request whose admission is still on its way (accounts.guard.key_required_overlapped) sends
    its hold at once and waits for both; a refused admission abandons the hold (released)."""
    hold_args: dict[str, Any] = dict(
        account_id=principal.account_id,
        amount=amount,
        purpose=purpose,
        request_id=request_id,
        idempotency_key=f"{purpose}:{request_id}:{unique_hex(96)}",
        api_key_id=principal.key_id,
        cap=principal.spend_cap_usd,
        release_if_abandoned=True,
    )
    try:
        started = ledger.start_ahold(**hold_args) if uses_postgres() else None  # on its way now
        try:
            await gate.confirm_pending()  # an admission still on its way answers first
        except BaseException:
            if started is not None:
                started.abandon()
            raise
        hold = await (started.result() if started is not None else ledger.ahold(**hold_args))
    except ledger.SpendCapReached:
        error = ApiError(
            "spend_cap_reached",
            cap=format_usd(principal.spend_cap_usd),
            meta={"cap_usd": float(principal.spend_cap_usd or 0)},  # a key with a cap
        )
    except ledger.InsufficientBalance as short:
        error = ApiError(
            "insufficient_balance",
            required=format_usd(short.required),
            available=format_usd(short.available),
            meta={"required_usd": float(short.required), "available_usd": float(short.available)},
        )
    else:
        return hold.id, hold_args["idempotency_key"]
    await refused(principal, error, request_id=request_id, endpoint=purpose, model=model)
    raise error


async def refused(
    principal: Principal, error: ApiError, *, request_id: str, endpoint: str, model: str
) -> None:
    """A call refused for money or permission is a usage row at cost 0 with its code: the user sees it."""
    await gate.confirm_pending()  # an admission still on its way answers first
    await metering.awrite(
        user_id=principal.user_id,
        api_key_id=principal.key_id,
        request_id=request_id,
        endpoint=endpoint,
        model=model,
        cost_usd=0,
        status="error",
        error_code=error.code,
    )


async def resolve_model(
    slug: str, principal: Principal, kind: str = "chat", *, endpoint: str = "chat"
) -> ModelInfo:
    """The model `slug` of `kind` if this key may use it; a 403 model_not_allowed is logged as a
    refused call of `endpoint` (request id: the one the response sends)."""
    model = (await asnapshot()).models.get(slug)
    if model is None or not model.available:
        raise ApiError("model_not_found", model=slug, meta={"model": slug})
    if model.kind != kind:
        raise ApiError("wrong_model_kind", model=slug, kind=model.kind)
    if not principal.may_use(slug):
        error = ApiError("model_not_allowed", model=slug)
        await refused(principal, error, request_id=request_id_var.get(), endpoint=endpoint, model=slug)
        raise error
    return model


async def prepare(
    principal: Principal,
    body: dict,
    *,
    request_id: str,
    endpoint: str,
    default_model: str | None = None,
    long_output_ok: bool = False,
    anthropic: AnthropicOriginal | None = None,
    output_field: str = "max_tokens",
) -> Prepared:
    """Validate, authorize and hold the most the vendor can bill. Raises ApiError; holds nothing then.
    `anthropic`: the Messages body `body` was translated from, which Anthropic routes send instead.
    `output_field`: what the client's dialect calls the output limit, for its error message."""
    slug, max_tokens, stream = validate_chat(body, default_model=default_model)
    limit = settings.GPUNIQ_STREAMING_REQUIRED_ABOVE
    if not stream and not long_output_ok and max_tokens and max_tokens > limit:
        raise ApiError(
            "streaming_required",
            field=output_field,
            max_tokens=max_tokens,
            limit=limit,
            meta={"max_tokens": max_tokens, "limit": limit},
        )
    model = await resolve_model(slug, principal, endpoint=endpoint)
    bound = chat_bound(
        model,
        body,
        stream=stream,
        anthropic_body=anthropic.body if anthropic else None,
        anthropic_headers=anthropic.headers if anthropic else None,
    )
    amount = chat_worst_case(
        prices(model),
        prompt_tokens=bound.prompt_tokens,
        max_output_tokens=bound.output_tokens,
        prompt_price_factor=bound.prompt_price_factor,
    )
    hold_id, hold_key = await hold_for(principal, amount, request_id, endpoint, model=slug)
    include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
    request = ChatRequest(
        body={**body, "model": slug},
        slug=slug,
        stream=stream,
        include_usage=include_usage,
        max_output_tokens=bound.base_output,
        request_id=request_id,
        first_byte_timeout=float(model.first_byte_timeout),
        anthropic=anthropic,
    )
    return Prepared(principal, model, request, hold_id, bound, endpoint, hold_key=hold_key)


def cut_usage(prepared: Prepared, partial: Usage | None, chars: int) -> Usage:
    """A reply without the vendor's final usage (a stream cut short, or a vendor that sent none):
    the whole prompt the vendor received — its own count where it gave one early, else an
    o200k_base count (exact for OpenAI models) — and the output produced, ~4 characters a token."""
    output = max(partial.completion_tokens if partial else 0, math.ceil(chars / 4))
    if partial is not None and partial.prompt_tokens:
        return Usage(
            prompt_tokens=partial.prompt_tokens,
            cached_tokens=partial.cached_tokens,
            cache_write_tokens=partial.cache_write_tokens,
            cache_write_1h_tokens=partial.cache_write_1h_tokens,
            completion_tokens=output,
        )
    return Usage(prompt_tokens=counted_prompt_tokens(prepared.request.body), completion_tokens=output)


def usage_from_text(prepared: Prepared, chars: int) -> Usage:
    return cut_usage(prepared, None, chars)


def reply_chars(response: dict) -> int:
    """The characters of text, reasoning and tool arguments in a chat.completion's choices."""
    total = 0
    for choice in response.get("choices") or ():
        message = choice.get("message") or {}
        total += len(text_of(message.get("content"))) + len(message.get("reasoning_content") or "")
        total += sum(
            len((c.get("function") or {}).get("arguments") or "") for c in message.get("tool_calls") or ()
        )
    return total


@dataclass
class Settled:
    cost: Decimal
    balance: Decimal


async def finish(
    prepared: Prepared,
    *,
    usage: Usage | None,
    route: Route | None = None,
    status: str = "ok",
    error_code: str = "",
    ttft_ms: int | None = None,
) -> Settled:
    """Settle the hold at the real cost (nothing when usage is None) and write the usage row."""
    tokens = usage or TokenUsage()
    cost = chat_cost(prices(prepared.model), tokens) if usage else Decimal(0)
    principal = prepared.principal
    row = dict(
        user_id=principal.user_id,
        api_key_id=principal.key_id,
        request_id=prepared.request.request_id,
        endpoint=prepared.endpoint,
        model=prepared.model.slug,
        route=str(route or ""),
        prompt_tokens=tokens.prompt_tokens,
        cached_tokens=tokens.cached_tokens,
        completion_tokens=tokens.completion_tokens,
        reasoning_tokens=tokens.reasoning_tokens,
        latency_ms=int((time.perf_counter() - prepared.started) * 1000),
        ttft_ms=ttft_ms,
        status=status,
        error_code=error_code,
        stream=prepared.request.stream,
    )
    reason = f"{prepared.model.slug} {status}"
    if uses_postgres():  # the usage row is written with the settle
        outcome = await ledger.aclose(
            hold_id=prepared.hold_id,
            account_id=principal.account_id,
            actual=cost,
            reason=reason,
            usage=metering.row_params(**row),
            hold_key=prepared.hold_key,
        )
    else:
        outcome = await ledger.aclose(
            hold_id=prepared.hold_id, account_id=principal.account_id, actual=cost, reason=reason
        )
        charged = outcome.charged if isinstance(outcome, ledger.Closed) else outcome.captured
        await metering.awrite(**row, cost_usd=charged)
    charged = outcome.charged if isinstance(outcome, ledger.Closed) else outcome.captured
    available = outcome.available
    if available is None:
        available = await run_db(_available, principal.account_id)
    return Settled(cost=charged, balance=available)


def _available(account_id: int) -> Decimal:
    return Account.objects.get(pk=account_id).available


def run_to_completion(coro) -> asyncio.Task:
    """Start work that must finish even if the request task is cancelled (client disconnect)."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


class Bill:
    """The one way a chat request's hold is closed, exactly once, on every exit path:

        async with chat.Bill(prepared) as bill:
            bill.sent = True  # the request is on its way to a vendor
            ...
            await bill.settle(usage, route=route)

    Leaving the block without settle() closes the hold too: a catalog error (the vendor failed,
    nothing delivered) releases it, unless output already reached the client (then that output
    and the prompt are billed); a cancellation or a closed stream (the client went away) bills
    the prompt the vendor received and the output produced (cut_usage), in a task of its own so
    the cancellation cannot interrupt it; anything else releases it as internal_error. A stream
    notes what it relays in `chars`, `partial` (the vendor's usage so far) and `usage`."""

    def __init__(self, prepared: Prepared, *, sent: bool = False):
        self.prepared = prepared
        self.sent = sent
        self.chars = 0
        self.partial: Usage | None = None
        self.usage: Usage | None = None
        self.usage_chunk: dict | None = None  # the vendor's own usage chunk, to pass on with cost_usd
        self.route: Route | None = None
        self.ttft_ms: int | None = None
        self.settled: Settled | None = None
        self.lost = False  # the database lost the hold (ledger.HoldLost)

    async def __aenter__(self) -> "Bill":
        return self

    def note(self, piece: StreamPiece) -> bool:
        """Note what a relayed stream piece tells the bill; True for the vendor's usage-only chunk,
        which the relay holds back (it goes out with cost_usd, if the client asked for usage)."""
        self.chars += piece.text_chars
        if piece.partial_usage is not None:
            self.partial = piece.partial_usage
        if piece.usage is not None:
            self.usage = piece.usage
        if piece.usage_only:
            self.usage_chunk = piece.chunk
            return True
        return False

    def produced(self) -> Usage:
        """What the vendor has billed so far: the vendor's final usage, else the cut estimate."""
        return self.usage or cut_usage(self.prepared, self.partial, self.chars)

    async def settle(
        self, usage: Usage | None, *, route: Route | None = None, status: str = "ok", error_code: str = ""
    ) -> Settled:
        if self.settled is None:
            try:
                self.settled = await finish(
                    self.prepared,
                    usage=usage,
                    route=route or self.route,
                    status=status,
                    error_code=error_code,
                    ttft_ms=self.ttft_ms,
                )
            except ledger.HoldLost:  # PostgreSQL lost it in a crash: nothing charged, nothing to close
                log.error("request %s: its hold was lost by the database", self.prepared.request.request_id)
                self.lost = True
                raise ApiError(
                    "service_unavailable", reason="The database restarted; retry shortly."
                ) from None
        return self.settled

    async def fail(self, code: str) -> None:
        """A failure the caller handles itself: bill what reached the client, nothing otherwise."""
        if not self.lost:  # else there is no hold left to close
            await self.settle(self.produced() if self.chars else None, status="error", error_code=code)

    async def __aexit__(self, kind, error, trace) -> bool:
        await self.close(error)
        return False

    async def close(self, error: BaseException | None) -> None:
        """Close the hold for a block left with `error` (None: left normally) unless settled."""
        if self.settled is not None or self.lost:
            return
        if isinstance(error, Exception) or error is None:
            code = getattr(error, "code", None)
            if code is None:
                log.error("request %s left its bill open", self.prepared.request.request_id, exc_info=error)
            await self.fail(code or "internal_error")
            return
        usage = self.produced() if self.sent else None  # cancelled, or the stream was closed
        closing = self.settle(usage, status="cancelled", error_code="client_disconnected")
        await asyncio.shield(run_to_completion(closing))
