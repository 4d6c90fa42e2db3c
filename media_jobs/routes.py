"""Route chains for image and video slugs: which catalog routes can serve, in what order, and
which adapter speaks each. Order = catalog order (primary vendor, intermediaries, the generic
fallback), routes in cool-down last (shared with chat through llm.route_health).

The generic OpenAI-compatible fallback has its own credential family for media
("fallback_images", defaulting to the chat fallback's URL and key).
"""

from functools import cache

from django.conf import settings

from llm import route_health
from llm.catalog import ModelInfo, load_catalog_file
from llm.upstreams import Upstream, serving_routes, upstream_for_family

from .providers.base import Route

MEDIA_FAMILY = {
    "openai_images": "openai_images",
    "openai_video": "openai_video",
    "gemini_images": "gemini_images",
    "xai_images": "xai_images",
    "fal": "fal",
    "openai_compat_fallback": "fallback_images",
}
PROVIDERS = {
    "image": {"openai_images", "gemini_images", "xai_images", "fal", "openai_compat_fallback"},
    "video": {"fal", "openai_video"},
}

_adapters: dict[tuple[str, str], object] = {}


def upstream(provider: str) -> Upstream | None:
    family = MEDIA_FAMILY.get(provider)
    return upstream_for_family(family) if family else None


def live_upstream(provider: str) -> Upstream:
    """The upstream of a live route's provider (live_routes: its upstream is configured)."""
    found = upstream(provider)
    if found is None:
        raise LookupError(f"no upstream is configured for media provider {provider}")
    return found


def live_routes(model: ModelInfo) -> list[Route]:
    """The routes that may serve `model`: its vendors with a key, else the sandbox (never both)."""
    wanted = PROVIDERS.get(model.kind, set())
    return [
        Route(r.provider, r.upstream_model)
        for r in serving_routes([r for r in model.routes if r.provider in wanted], upstream)
    ]


async def ordered_routes(model: ModelInfo) -> list[Route]:
    routes = live_routes(model)
    down = await route_health.cooling([str(r) for r in routes])
    return [r for r in routes if str(r) not in down] + [r for r in routes if str(r) in down]


def is_sandbox(route: Route) -> bool:
    found = upstream(route.provider)
    return bool(found and found.sandbox)


def adapter(route: Route, kind: str):
    """The image or video adapter for a route (one instance per provider and kind)."""
    key = (route.provider, kind)
    found = _adapters.get(key)
    if found is None:
        found = _adapters[key] = _build(route.provider, kind, live_upstream(route.provider))
    return found


def _build(provider: str, kind: str, up: Upstream):
    from .providers import fal, gemini_images, openai_images, openai_video, sandbox

    if up.sandbox:
        return sandbox.SandboxImages() if kind == "image" else sandbox.SandboxVideo()
    if kind == "video":
        return openai_video.OpenAIVideo(up) if provider == "openai_video" else fal.FalVideo(up)
    if provider == "gemini_images":
        return gemini_images.GeminiImages(up)
    if provider == "fal":
        return fal.FalImages(up)
    flavor = {"openai_images": "openai", "xai_images": "xai"}.get(provider, "compat")
    return openai_images.OpenAIImages(up, flavor)


@cache
def _catalog_extras() -> dict[str, dict]:
    """Fields of catalog.toml the database does not keep (default_size, price.covers)."""
    try:
        data = load_catalog_file(settings.GPUNIQ_CATALOG_PATH)
    except (OSError, ValueError):
        return {}
    return {
        m["slug"]: {"default_size": m.get("default_size"), "covers": m.get("price", {}).get("covers", {})}
        for m in data.get("models", [])
    }


def default_size(slug: str) -> str | None:
    return (_catalog_extras().get(slug) or {}).get("default_size")


def price_covers(slug: str) -> dict:
    """What the model's per-image price covers (media_jobs.price_covers)."""
    return (_catalog_extras().get(slug) or {}).get("covers") or {}


def reset() -> None:
    _adapters.clear()
    _catalog_extras.cache_clear()
