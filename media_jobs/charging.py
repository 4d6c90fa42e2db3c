"""Money for media, only through billing.ledger: hold the worst case before any upstream call,
settle what was delivered (per image, or the resolved video price), release otherwise, and
write one UsageLog row per request or job.
"""

import logging
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

from accounts.keys import Principal
from accounts.models import APIKey
from billing import ledger, metering
from billing.models import Account
from billing.money import format_usd
from gpuniq_site.errors import ApiError

if TYPE_CHECKING:
    from .models import MediaJob

log = logging.getLogger("gpuniq.media.billing")


def hold(
    principal: Principal,
    amount: Decimal,
    *,
    purpose: str,
    request_id: str,
    key: str | None = None,
    model: str = "",
) -> int:
    """Reserve `amount` within the balance and the key's monthly cap (402 / 403 otherwise, and the
    refused request is logged at cost 0)."""
    try:
        ref = ledger.hold(
            account_id=principal.account_id,
            amount=amount,
            purpose=purpose,
            request_id=request_id,
            idempotency_key=key or f"{purpose}:{request_id}:{uuid.uuid4().hex}",
            api_key_id=principal.key_id,
            cap=principal.spend_cap_usd,
        )
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
        return ref.id
    usage_row(
        user_id=principal.user_id,
        key_id=principal.key_id,
        request_id=request_id,
        endpoint=purpose,
        model=model,
        status="error",
        error_code=error.code,
    )
    raise error


def settle(hold_id: int, amount: Decimal, reason: str) -> Decimal | None:
    """Charge `amount` from the hold and release the rest; None when the hold was already closed."""
    return ledger.settle(hold_id=hold_id, actual=amount, reason=reason)


def release(hold_id: int, reason: str) -> None:
    ledger.release(hold_id=hold_id, reason=reason)


def late_charge(
    account_id: int, amount: Decimal, key: str, reason: str, *, api_key_id: int | None
) -> Decimal:
    """Charge for a delivery whose hold something other than its job closed: a fresh hold within
    the balance and the key's monthly cap (as every hold), settled at once. Nothing is charged
    (and nothing may be delivered) when the balance or the cap no longer covers it."""
    cap = None
    if api_key_id is not None:
        cap = APIKey.objects.filter(pk=api_key_id).values_list("monthly_spend_cap_usd", flat=True).first()
    try:
        ref = ledger.hold(
            account_id=account_id,
            amount=amount,
            idempotency_key=key,
            purpose="media_late",
            api_key_id=api_key_id,
            cap=cap,
        )
    except (ledger.InsufficientBalance, ledger.SpendCapReached) as refused:
        log.warning(
            "late media charge %s of %s refused (%s): not delivered", key, amount, type(refused).__name__
        )
        return Decimal(0)
    return ledger.settle(hold_id=ref.id, actual=amount, reason=reason) or Decimal(0)


def available(account_id: int) -> Decimal:
    return Account.objects.get(pk=account_id).available


def available_for_user(user_id: int) -> Decimal:
    return Account.objects.get(user_id=user_id).available


def failed_job_row(job: "MediaJob", code: str, latency_ms: int = 0) -> None:
    """The usage row of a job that ended without delivering: cost 0, with its error code."""
    usage_row(
        user_id=job.user_id,
        key_id=job.api_key_id,
        request_id=job.request_id,
        endpoint=f"{job.kind}_job",
        model=job.model,
        status="error",
        error_code=code,
        latency_ms=latency_ms,
    )


def usage_row(
    *,
    user_id: int,
    key_id: int | None,
    request_id: str,
    endpoint: str,
    model: str,
    route: str = "",
    images: int = 0,
    video_seconds: int = 0,
    cost: Decimal = Decimal(0),
    latency_ms: int = 0,
    status: str = "ok",
    error_code: str = "",
):
    return metering.write(
        user_id=user_id,
        api_key_id=key_id,
        request_id=request_id,
        endpoint=endpoint,
        model=model,
        route=route,
        images=images,
        video_seconds=video_seconds,
        cost_usd=cost,
        latency_ms=max(0, latency_ms),
        status=status,
        error_code=error_code,
    )
