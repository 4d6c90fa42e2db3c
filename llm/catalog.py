"""The model catalog: load llm/catalog.toml into the database, and serve a read-only snapshot.

No process serves a snapshot older than GPUNIQ_CATALOG_TTL_SECONDS (10) (and the process that
edits the catalog rebuilds it at once), so an admin edit reaches every process within that time
without a database read on every request. One thread at a time rebuilds it, once. The event
loop never waits for a rebuild while traffic flows: past half its lifetime, the first request
that reads the snapshot starts one in the background and keeps using the current snapshot.
"""

import asyncio
import logging
import threading
import time
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .models import CatalogModel, Route
from .upstreams import serving_routes, upstream_for


log = logging.getLogger("gpuniq.catalog")


def _ttl() -> float:
    return settings.GPUNIQ_CATALOG_TTL_SECONDS


@dataclass(frozen=True)
class RouteInfo:
    provider: str
    upstream_model: str


@dataclass(frozen=True)
class ModelInfo:
    slug: str
    name: str
    vendor: str
    kind: str
    category: str
    context_window: int | None
    max_output: int | None
    capabilities: tuple[str, ...]
    reasoning: bool
    first_byte_timeout: int
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None
    per_image: Decimal | None
    per_video: Decimal | None
    video_options: dict = field(hash=False)
    routes: tuple[RouteInfo, ...]
    notes: str = ""
    long_context: dict = field(default_factory=dict, hash=False)  # CatalogModel.long_context

    def live_routes(self) -> tuple[RouteInfo, ...]:
        """Routes whose vendor has a key; or, when none has, the sandbox (llm.upstreams.serving_routes)."""
        return tuple(serving_routes(self.routes, upstream_for))

    @property
    def available(self) -> bool:
        return bool(self.live_routes())

    def _long_context_dict(self) -> dict:
        tier = self.long_context
        if not tier:
            return {}
        return {
            "long_context": {
                "above_prompt_tokens": int(tier["above"]),
                "input_per_1m": float(tier["input"]),
                "output_per_1m": float(tier["output"]),
                "cached_input_per_1m": float(tier["cached_input"]) if tier.get("cached_input") else None,
            }
        }

    def price_dict(self) -> dict:
        if self.kind == CatalogModel.CHAT:
            return {
                "input_per_1m": _num(self.input_per_mtok),
                "output_per_1m": _num(self.output_per_mtok),
                "cached_input_per_1m": _num(self.cached_input_per_mtok),
                "currency": "USD",
                **self._long_context_dict(),
            }
        if self.kind == CatalogModel.IMAGE:
            return {"per_image": _num(self.per_image), "currency": "USD"}
        return {"per_video": _num(self.per_video), "currency": "USD"}


def _num(value: Decimal | None):
    return float(value) if value is not None else None


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, ModelInfo]
    default_chat_model: str
    loaded_at: float


_lock = threading.Lock()
_snapshot: Snapshot | None = None
DEFAULT_CHAT_MODEL = "claude-haiku-4-5"


_MODEL_FIELDS = (
    "id",
    "slug",
    "name",
    "vendor",
    "kind",
    "category",
    "context_window",
    "max_output",
    "capabilities",
    "reasoning",
    "first_byte_timeout",
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "per_image",
    "per_video",
    "video_options",
    "notes",
    "long_context",
)


def _build_snapshot() -> Snapshot:
    """Two plain queries, no model instances: a process rebuilds this every few seconds under
    traffic, in a thread that holds the GIL while it runs, and the event loop waits that long
    (3.6 ms for the catalog as shipped; 12.8 ms with instances and a prefetch; docs/performance.md)."""
    routes: dict[int, list[RouteInfo]] = {}
    for model_id, provider, upstream_model in (
        Route.objects.filter(enabled=True)
        .order_by("model_id", "position")
        .values_list("model_id", "provider", "upstream_model")
    ):
        routes.setdefault(model_id, []).append(RouteInfo(provider, upstream_model))
    models = {}
    rows = CatalogModel.objects.filter(enabled=True).order_by("kind", "position").values_list(*_MODEL_FIELDS)
    for row in rows:
        fields = dict(zip(_MODEL_FIELDS, row, strict=True))
        model_id = fields.pop("id")
        fields["capabilities"] = tuple(fields["capabilities"] or ())
        fields["video_options"] = fields["video_options"] or {}
        fields["long_context"] = fields["long_context"] or {}
        models[fields["slug"]] = ModelInfo(**fields, routes=tuple(routes.get(model_id, ())))
    return Snapshot(models=models, default_chat_model=DEFAULT_CHAT_MODEL, loaded_at=time.monotonic())


def _older_than(current: Snapshot | None, seconds: float) -> bool:
    return current is None or time.monotonic() - current.loaded_at > seconds


def snapshot(max_age: float | None = None) -> Snapshot:
    """The current catalog, rebuilt first if older than `max_age` (default: the TTL). Sync; async
    code uses asnapshot. Callers that waited for another thread's rebuild use its result."""
    global _snapshot
    max_age = _ttl() if max_age is None else max_age
    current = _snapshot
    if _older_than(current, max_age):
        with _lock:
            current = _snapshot
            if _older_than(current, max_age):
                current = _snapshot = _build_snapshot()
    assert current is not None  # built above when missing
    return current


def fresh_snapshot() -> Snapshot | None:
    """The snapshot if it is still fresh, without touching the database (for the event loop)."""
    current = _snapshot
    return None if _older_than(current, _ttl()) else current


def invalidate() -> None:
    global _snapshot
    _snapshot = None


_refreshing: set[asyncio.Future] = set()


async def asnapshot() -> Snapshot:
    from gpuniq_site.db import run_db

    current = fresh_snapshot()
    if current is None:
        return await run_db(snapshot)
    if not _refreshing and _older_than(current, _ttl() / 2):  # rebuilt ahead of time, off the request
        task = asyncio.ensure_future(run_db(snapshot, _ttl() / 2))
        _refreshing.add(task)
        task.add_done_callback(_refresh_done)
    return current


def _refresh_done(task: asyncio.Future) -> None:
    _refreshing.discard(task)
    if not task.cancelled() and task.exception() is not None:  # the next request past the TTL retries
        log.warning("rebuilding the catalog snapshot failed: %s", task.exception())


# --- loading the data file ---------------------------------------------------------------


def _dec(value) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _fields_from_entry(entry: dict, position: int) -> dict:
    price = entry.get("price", {})
    kind = entry["kind"]
    video_options = {k: v for k, v in price.items() if k != "per_video"} if kind == "video" else {}
    list_price = dict(entry.get("list_price", {}))
    return dict(
        name=entry["name"],
        vendor=entry["vendor"],
        kind=kind,
        category=entry.get("category", ""),
        position=position,
        context_window=entry.get("context_window"),
        max_output=entry.get("max_output"),
        capabilities=list(entry.get("capabilities", [])),
        reasoning=bool(entry.get("reasoning", False)),
        first_byte_timeout=int(entry.get("first_byte_timeout", 300 if entry.get("reasoning") else 120)),
        input_per_mtok=_dec(price.get("input")),
        output_per_mtok=_dec(price.get("output")),
        cached_input_per_mtok=_dec(price.get("cached_input")),
        per_image=_dec(price.get("per_image")),
        per_video=_dec(price.get("per_video")),
        video_options=video_options,
        long_context=dict(price.get("long_context") or {}) if kind == "chat" else {},
        list_price=list_price,
        notes=entry.get("notes", "") or entry.get("pricing_note", ""),
    )


def load_catalog_file(path: Path) -> dict:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    slugs = [m["slug"] for m in data["models"]]
    duplicates = {s for s in slugs if slugs.count(s) > 1}
    if duplicates:
        raise ValueError(f"duplicate slugs in {path}: {sorted(duplicates)}")
    return data


def sync_catalog(path: Path) -> tuple[int, int]:
    """Create or update every model and its routes from the file. Idempotent. Returns (created, updated).

    Models missing from the file are left alone (operators may add their own in the admin).
    """
    data = load_catalog_file(path)
    if data.get("default_chat_model", DEFAULT_CHAT_MODEL) != DEFAULT_CHAT_MODEL:
        raise ValueError("default_chat_model in the file must match llm.catalog.DEFAULT_CHAT_MODEL")
    created = updated = 0
    with transaction.atomic():
        for position, entry in enumerate(data["models"]):
            model, was_created = CatalogModel.objects.update_or_create(
                slug=entry["slug"], defaults=_fields_from_entry(entry, position)
            )
            created += was_created
            updated += not was_created
            wanted = [(r["provider"], r["upstream_model"]) for r in entry.get("routes", [])]
            have = [(r.provider, r.upstream_model) for r in model.routes.order_by("position")]
            if wanted != have:
                model.routes.all().delete()
                Route.objects.bulk_create(
                    Route(model=model, position=i, provider=p, upstream_model=u)
                    for i, (p, u) in enumerate(wanted)
                )
    invalidate()
    return created, updated
