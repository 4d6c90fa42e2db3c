"""API keys: create, revoke, and turn a raw key into a Principal (cached by hash).

The cache holds only the key's SHA-256 and the facts a request needs. Revoking deletes the
cache entry, so with Redis configured every process refuses the key on its next request.
A Principal names the user's money account, which is billing's: billing hands in how to find it
(provide_account_lookup, when its app loads), so accounts imports nothing from billing.
"""

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from gpuniq_site import shared_state
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError

from .models import KEY_PREFIX, APIKey, User, generate_raw_key, hash_key

LAST_USED_EVERY_SECONDS = 60

_account_lookup: Callable[[int], int] | None = None


def provide_account_lookup(lookup: Callable[[int], int]) -> None:
    """Set how a user's account id is found, the account made on first use (billing's AppConfig
    calls this when the app loads). Every principal loaded afterwards carries that account id."""
    global _account_lookup
    _account_lookup = lookup


def _account_id(user_id: int) -> int:
    if _account_lookup is None:
        raise ImproperlyConfigured("no account lookup: billing provides it when its app loads")
    return _account_lookup(user_id)


@dataclass(frozen=True)
class Principal:
    """Who is calling: everything the hot path needs without touching the database."""

    user_id: int
    key_id: int
    account_id: int
    rpm: int
    spend_cap: str | None  # Decimal as text, None = no cap
    allowed_models: tuple[str, ...]
    last_used: float  # unix time of the last recorded use

    def may_use(self, model_slug: str) -> bool:
        return not self.allowed_models or model_slug in self.allowed_models

    @property
    def spend_cap_usd(self) -> Decimal | None:
        return Decimal(self.spend_cap) if self.spend_cap is not None else None


def principal_cache_key(key_hash: str) -> str:
    """Where a key's principal (or its refusal) is cached, in Redis or the local store."""
    return f"gpuniq:apikey:{key_hash}"


def create_key(
    *,
    user: User,
    name: str = "default",
    rpm: int | None = None,
    monthly_spend_cap_usd: Decimal | None = None,
    allowed_models: list[str] | None = None,
) -> tuple[APIKey, str]:
    """Create a key and return it with the raw secret, which is never stored or shown again."""
    raw = generate_raw_key()
    key = APIKey.objects.create(
        user=user,
        name=name,
        key_hash=hash_key(raw),
        prefix=raw[: len(KEY_PREFIX) + 4],
        last4=raw[-4:],
        rpm=rpm or settings.GPUNIQ_DEFAULT_RPM,
        monthly_spend_cap_usd=monthly_spend_cap_usd,
        allowed_models=list(allowed_models or []),
    )
    shared_state.cache_discard(
        principal_cache_key(key.key_hash)
    )  # no refusal cached for this hash can outlive it
    return key, raw


def revoke_key(*, key: APIKey) -> None:
    """Revoke now; the cache entry goes with the commit so no process keeps serving it."""
    with transaction.atomic():
        APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        transaction.on_commit(lambda: forget_key(key.key_hash))
    key.refresh_from_db(fields=["revoked_at"])


def update_key(
    *, key: APIKey, name: str, rpm: int, monthly_spend_cap_usd: Decimal | None, allowed_models: list[str]
) -> APIKey:
    """Change a live key's name and limits; the cached principal goes with the commit."""
    with transaction.atomic():
        APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            name=name,
            rpm=rpm,
            monthly_spend_cap_usd=monthly_spend_cap_usd,
            allowed_models=list(allowed_models),
        )
        transaction.on_commit(lambda: forget_key(key.key_hash))
    key.refresh_from_db()
    return key


def forget_key(key_hash: str) -> None:
    """Drop a key's cached principal (after revocation or a change of its limits)."""
    shared_state.cache_delete(principal_cache_key(key_hash))


def extract_raw_key(headers: Mapping[str, str]) -> str | None:
    return _raw_key(headers.get("authorization", ""), headers.get("x-api-key", ""))


def request_raw_key(request: Any) -> str | None:
    """extract_raw_key(request.headers), read from request.META: the API's hot path never builds
    Django's HttpHeaders (a parse of every header, on each request)."""
    meta = request.META
    return _raw_key(meta.get("HTTP_AUTHORIZATION", ""), meta.get("HTTP_X_API_KEY", ""))


def _raw_key(authorization: str, x_api_key: str) -> str | None:
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return x_api_key.strip() or None


def _load_principal(key_hash: str) -> dict[str, Any]:
    row = APIKey.objects.filter(key_hash=key_hash).select_related("user").first()
    if row is None or not row.user.is_active:
        _refuse(key_hash, "invalid_api_key")
    if row.revoked_at is not None:
        _refuse(key_hash, "revoked_api_key")
    account_id = _account_id(row.user_id)
    cap = row.monthly_spend_cap_usd
    last_used = row.last_used_at.timestamp() if row.last_used_at else 0.0
    return asdict(
        Principal(
            user_id=row.user_id,
            key_id=row.pk,
            account_id=account_id,
            rpm=row.rpm,
            spend_cap=str(cap) if cap is not None else None,
            allowed_models=tuple(row.allowed_models or ()),
            last_used=last_used,
        )
    )


def _refuse(key_hash: str, code: str) -> NoReturn:
    """Remember a refused key for GPUNIQ_NEGATIVE_KEY_CACHE_SECONDS, so a flood of the same bad key
    is one database lookup per interval, then raise. Keys are random: a refused hash cannot
    belong to a key created later (and create_key drops any entry for its hash anyway)."""
    shared_state.cache_set_json(
        principal_cache_key(key_hash), {"refused": code}, settings.GPUNIQ_NEGATIVE_KEY_CACHE_SECONDS
    )
    raise ApiError(code)


def _cached(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is not None and "refused" in data:
        raise ApiError(data["refused"])
    return data


def touch_last_used(key_id: int, key_hash: str, data: dict[str, Any]) -> None:
    """Record last use at most once a minute; a conditional update lets one process win. `data`,
    the cached principal, is stamped and cached again."""
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(
        last_used_at__lt=now - timedelta(seconds=LAST_USED_EVERY_SECONDS)
    )
    APIKey.objects.filter(stale, pk=key_id).update(last_used_at=now)
    data["last_used"] = now.timestamp()
    shared_state.cache_set_json(principal_cache_key(key_hash), data, settings.GPUNIQ_KEY_CACHE_SECONDS)


_touched: dict[int, float] = {}  # key id -> when this process last started recording its use


async def touch_once(key_id: int, key_hash: str, data: dict[str, Any]) -> None:
    """Record a key's use (touch_last_used) at most once a minute per key in this process: of a burst of
    requests that all read a stale `last_used` from the cache, the first waits for the update
    and the others go on without it."""
    now = time.monotonic()
    if now - _touched.get(key_id, -LAST_USED_EVERY_SECONDS) < LAST_USED_EVERY_SECONDS:
        return
    if len(_touched) > 100_000:
        _touched.clear()
    _touched[key_id] = now
    await run_db(touch_last_used, key_id, key_hash, dict(data))


_loading: dict[
    tuple[Any, str], asyncio.Future[dict[str, Any]]
] = {}  # (event loop, key hash) -> the load in flight


async def _load_once(key_hash: str) -> dict[str, Any]:
    """The key's principal from the database, cached. One load per key at a time in each event
    loop: the burst of requests that finds the cache entry just expired waits for the same load."""
    at = (asyncio.get_running_loop(), key_hash)
    found = _loading.get(at)
    if found is None:
        found = _loading[at] = asyncio.ensure_future(_load_and_cache(key_hash))
        found.add_done_callback(functools.partial(_loaded, at))
    return dict(await asyncio.shield(found))


def _loaded(at: tuple[Any, str], done: asyncio.Future[dict[str, Any]]) -> None:
    _loading.pop(at, None)
    if not done.cancelled():
        done.exception()  # marked retrieved: a refusal reaches every waiter, or none was left


async def reload_principal(key_hash: str) -> dict[str, Any]:
    """Load the key's principal from the database and cache it for a full lifetime again (before
    its entry expires: accounts.gate); shares a load already in flight for the key."""
    return await _load_once(key_hash)


async def _load_and_cache(key_hash: str) -> dict[str, Any]:
    data = await run_db(_load_principal, key_hash)
    await shared_state.acache_set_json(principal_cache_key(key_hash), data, settings.GPUNIQ_KEY_CACHE_SECONDS)
    return data


def key_hash_of(raw: str | None) -> str:
    """The hash a raw key is stored and cached under; ApiError for a missing or malformed key."""
    if raw is None:
        raise ApiError("missing_api_key")
    if not raw.startswith(KEY_PREFIX) or len(raw) < len(KEY_PREFIX) + 32 or len(raw) > 200:
        raise ApiError("invalid_api_key")
    return hash_key(raw)


def principal_from(data: dict[str, Any]) -> Principal:
    """The Principal of a cached (JSON) principal."""
    data["allowed_models"] = tuple(data["allowed_models"])
    return Principal(**data)


def authenticate(raw: str | None) -> Principal:
    """Sync variant (DRF views, the dashboard)."""
    key_hash = key_hash_of(raw)
    data = _cached(shared_state.cache_get_json(principal_cache_key(key_hash)))
    if data is None:
        data = _load_principal(key_hash)
        shared_state.cache_set_json(principal_cache_key(key_hash), data, settings.GPUNIQ_KEY_CACHE_SECONDS)
    if time.time() - data["last_used"] > LAST_USED_EVERY_SECONDS:
        touch_last_used(data["key_id"], key_hash, data)
    return principal_from(data)


async def aauthenticate(raw: str | None) -> Principal:
    """Async variant for the hot path: one cache read when warm, DB work off the event loop."""
    key_hash = key_hash_of(raw)
    data = _cached(await shared_state.acache_get_json(principal_cache_key(key_hash)))
    if data is None:
        data = await _load_once(key_hash)
    if time.time() - data["last_used"] > LAST_USED_EVERY_SECONDS:
        await touch_once(data["key_id"], key_hash, data)
    return principal_from(data)


DASHBOARD_KEY_NAME = "Web dashboard"


def user_keys(user: User) -> QuerySet[APIKey]:
    """The keys a user manages: every key but the dashboard's own (it has no usable secret)."""
    return user.api_keys.exclude(name=DASHBOARD_KEY_NAME)


def month_start() -> datetime:
    """Where a key's monthly spend cap starts counting (the same instant the cap check uses)."""
    return timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def with_month_spend(keys: QuerySet[APIKey]) -> QuerySet[APIKey]:
    """Annotate each key with `month_spend`: what its requests cost since the month began (USD)."""
    spent = Sum("usage_logs__cost_usd", filter=Q(usage_logs__created_at__gte=month_start()))
    return keys.annotate(month_spend=Coalesce(spent, Value(Decimal(0)), output_field=DecimalField()))


def _dashboard_key(user: User) -> APIKey:
    """The user's live dashboard key, created on first use. Its raw secret is discarded at once:
    it is never shown, so the key cannot be used outside the session-authenticated dashboard.
    The user row is locked so two first requests do not create two keys."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        key = (
            APIKey.objects.filter(user=user, name=DASHBOARD_KEY_NAME, revoked_at__isnull=True)
            .order_by("created_at")
            .first()
        )
        if key is None:
            key, _raw = create_key(user=user, name=DASHBOARD_KEY_NAME)
    return key


def dashboard_principal(user: User) -> Principal:
    """The Principal of the web chat and studio: the user with their "Web dashboard" key, so usage
    rows, spend caps and rate limits work exactly as for API calls (revoking it makes a new one)."""
    return principal_from(_load_principal(_dashboard_key(user).key_hash))
