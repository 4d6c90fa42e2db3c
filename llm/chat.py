"""One chat completion's money and bookkeeping: authorize and hold before the upstream call,
settle and log after. Used by the OpenAI-compatible and native surfaces and by chat jobs.

Guarantee: every hold taken here is settled (at the exact cost from upstream usage, or from
the streamed text when none arrived) or released, and exactly one usage row is written.
"""

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.keys import Principal
from billing import ledger
from billing.models import Account
from billing.pricing import TokenPrices, TokenUsage, chat_cost, chat_worst_case
from gpuniq_site.db import run_db, uses_postgres
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import unique_hex

from .catalog import ModelInfo, asnapshot
from . import usage as usage_rows
from .models import UsageLog
from .providers.base import ChatRequest, Route, Usage
from .validation import estimate_prompt_tokens, validate_chat

NON_STREAM_OUTPUT_RESERVE = 4096
STREAM_OUTPUT_RESERVE = 16384


@dataclass
class Prepared:
    principal: Principal
    model: ModelInfo
    request: ChatRequest
    hold_id: int
    prompt_estimate: int
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0


def prices(model: ModelInfo) -> TokenPrices:
    return TokenPrices(input=model.input_per_mtok or Decimal(0), output=model.output_per_mtok or Decimal(0),
                       cached_input=model.cached_input_per_mtok)


def month_spend(key_id: int) -> Decimal:
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = UsageLog.objects.filter(api_key_id=key_id, created_at__gte=start).aggregate(s=Sum("cost_usd"))["s"]
    return total or Decimal(0)


async def hold_for(principal: Principal, amount: Decimal, request_id: str, purpose: str) -> int:
    """Hold `amount` for this key's request, or raise the catalog error that says why not."""
    cap = principal.spend_cap_usd
    if cap is not None and await run_db(month_spend, principal.key_id) + amount > cap:
        raise ApiError("spend_cap_reached", cap=cap, meta={"cap_usd": float(cap)})
    try:
        hold = await ledger.ahold(account_id=principal.account_id, amount=amount, purpose=purpose,
                                  request_id=request_id,
                                  idempotency_key=f"{purpose}:{request_id}:{unique_hex(96)}",
                                  release_if_abandoned=True)
    except ledger.InsufficientBalance as short:
        raise ApiError("insufficient_balance", required=short.required, available=short.available,
                       meta={"required_usd": float(short.required), "available_usd": float(short.available)}
                       ) from None
    return hold.id



async def resolve_model(slug: str, principal: Principal, kind: str = "chat") -> ModelInfo:
    model = (await asnapshot()).models.get(slug)
    if model is None or not model.available:
        raise ApiError("model_not_found", model=slug, meta={"model": slug})
    if model.kind != kind:
        raise ApiError("wrong_model_kind", model=slug, kind=model.kind)
    if not principal.may_use(slug):
        raise ApiError("model_not_allowed", model=slug)
    return model


async def prepare(principal: Principal, body: dict, *, request_id: str, endpoint: str,
                  default_model: str | None = None, long_output_ok: bool = False) -> Prepared:
    """Validate, authorize and hold the worst-case cost. Raises ApiError; holds nothing then."""
    slug, max_tokens, stream = validate_chat(body, default_model=default_model)
    limit = settings.GPUNIQ_STREAMING_REQUIRED_ABOVE
    if not stream and not long_output_ok and max_tokens and max_tokens > limit:
        raise ApiError("streaming_required", max_tokens=max_tokens, limit=limit,
                       meta={"max_tokens": max_tokens, "limit": limit})
    model = await resolve_model(slug, principal)
    reserve = max_tokens or min(model.max_output or NON_STREAM_OUTPUT_RESERVE,
                                STREAM_OUTPUT_RESERVE if stream else NON_STREAM_OUTPUT_RESERVE)
    prompt_estimate = estimate_prompt_tokens(body)
    amount = chat_worst_case(prices(model), prompt_tokens=prompt_estimate, max_output_tokens=reserve)
    hold_id = await hold_for(principal, amount, request_id, endpoint)
    include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
    request = ChatRequest(body={**body, "model": slug}, slug=slug, stream=stream, include_usage=include_usage,
                          max_output_tokens=reserve, request_id=request_id,
                          first_byte_timeout=float(model.first_byte_timeout))
    return Prepared(principal, model, request, hold_id, prompt_estimate, endpoint)


def usage_from_text(prepared: Prepared, chars: int) -> Usage:
    """When a stream ends without usage: the prompt estimate and ~4 characters a token."""
    return Usage(prompt_tokens=prepared.prompt_estimate, completion_tokens=math.ceil(chars / 4))


@dataclass
class Settled:
    cost: Decimal
    balance: Decimal


async def finish(prepared: Prepared, *, usage: Usage | None, route: Route | None = None, status: str = "ok",
                 error_code: str = "", ttft_ms: int | None = None) -> Settled:
    """Settle the hold at the real cost (nothing when usage is None) and write the usage row."""
    tokens = usage or TokenUsage()
    cost = chat_cost(prices(prepared.model), tokens) if usage else Decimal(0)
    principal = prepared.principal
    row = dict(
        user_id=principal.user_id, api_key_id=principal.key_id, request_id=prepared.request.request_id,
        endpoint=prepared.endpoint, model=prepared.model.slug, route=str(route or ""),
        prompt_tokens=tokens.prompt_tokens, cached_tokens=tokens.cached_tokens,
        completion_tokens=tokens.completion_tokens, reasoning_tokens=tokens.reasoning_tokens,
        latency_ms=int((time.perf_counter() - prepared.started) * 1000), ttft_ms=ttft_ms, status=status,
        error_code=error_code, stream=prepared.request.stream)
    reason = f"{prepared.model.slug} {status}"
    if uses_postgres():  # settle and usage row in one round trip
        also = (usage_rows.INSERT_FROM_HOLD_SQL, usage_rows.row_params(**row, cost_usd=0, hold_id=prepared.hold_id))
        charged, available = await ledger.asettle(hold_id=prepared.hold_id, account_id=principal.account_id,
                                                  actual=cost, reason=reason, also=also,
                                                  also_cte=usage_rows.INSERT_FROM_HOLD_CTE)
        charged = charged if charged is not None else Decimal(0)
    else:
        charged, _ = await ledger.asettle(hold_id=prepared.hold_id, account_id=principal.account_id, actual=cost,
                                         reason=reason)
        charged = charged if charged is not None else Decimal(0)
        await usage_rows.awrite(**row, cost_usd=charged)
        available = await run_db(_available, principal.account_id)
    return Settled(cost=charged, balance=available)


def _available(account_id: int) -> Decimal:
    return Account.objects.get(pk=account_id).available
