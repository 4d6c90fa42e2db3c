"""Which upstream providers are configured: UPSTREAM_<P>_BASE_URL and UPSTREAM_<P>_API_KEY.

A provider without a key is disabled. With GPUNIQ_SANDBOX=1 a provider without a key is served
by the built-in sandbox (simulated replies, clearly marked), but only for models none of whose
routes has a real vendor configured (`serving_routes`): the simulator never stands in for a
real vendor, not even as a fallback after that vendor failed. Read once per process.

Media endpoints have families of their own (UPSTREAM_OPENAI_IMAGES_*, UPSTREAM_OPENAI_VIDEO_*,
UPSTREAM_GEMINI_IMAGES_*, UPSTREAM_XAI_IMAGES_*, UPSTREAM_FALLBACK_IMAGES_*) so each can point
elsewhere; unset, they use their parent vendor's base URL and key (FAMILY_PARENT).
"""

import os
from dataclasses import dataclass
from functools import cache

from django.conf import settings

# credential family → (env prefix, public default base URL)
FAMILIES = {
    "openai": ("OPENAI", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC", "https://api.anthropic.com"),
    "gemini": ("GEMINI", "https://generativelanguage.googleapis.com"),
    "xai": ("XAI", "https://api.x.ai/v1"),
    "deepseek": ("DEEPSEEK", "https://api.deepseek.com/v1"),
    "minimax": ("MINIMAX", "https://api.minimax.io/v1"),
    "fallback": ("FALLBACK", "https://openrouter.ai/api/v1"),
    "fal": ("FAL", "https://queue.fal.run"),
    "openai_images": ("OPENAI_IMAGES", "https://api.openai.com/v1"),
    "openai_video": ("OPENAI_VIDEO", "https://api.openai.com/v1"),
    "gemini_images": ("GEMINI_IMAGES", "https://generativelanguage.googleapis.com"),
    "xai_images": ("XAI_IMAGES", "https://api.x.ai/v1"),
    "fallback_images": ("FALLBACK_IMAGES", "https://openrouter.ai/api/v1"),
}

# media family → the vendor family whose base URL and key it uses when its own are unset
FAMILY_PARENT = {
    "openai_images": "openai",
    "openai_video": "openai",
    "gemini_images": "gemini",
    "xai_images": "xai",
    "fallback_images": "fallback",
}

# catalog provider name → credential family
PROVIDER_FAMILY = {
    "openai": "openai",
    "openai_images": "openai_images",
    "openai_video": "openai_video",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "gemini_images": "gemini_images",
    "xai": "xai",
    "xai_images": "xai_images",
    "deepseek": "deepseek",
    "minimax": "minimax",
    "openai_compat_fallback": "fallback",
    "fal": "fal",
}


@dataclass(frozen=True)
class Upstream:
    family: str
    base_url: str
    api_key: str
    sandbox: bool = False


def _configured(family: str) -> tuple[str, str]:
    prefix = FAMILIES[family][0]
    return os.environ.get(f"UPSTREAM_{prefix}_API_KEY", ""), os.environ.get(f"UPSTREAM_{prefix}_BASE_URL", "")


@cache
def upstream_for_family(family: str) -> Upstream | None:
    default_base = FAMILIES[family][1]
    key, base = _configured(family)
    parent = FAMILY_PARENT.get(family)
    if parent:
        parent_key, parent_base = _configured(parent)
        key, base = key or parent_key, base or parent_base
    base = base or default_base
    if key:
        return Upstream(family=family, base_url=base.rstrip("/"), api_key=key)
    if settings.GPUNIQ_SANDBOX:
        return Upstream(family=family, base_url="sandbox:", api_key="", sandbox=True)
    return None


def serving_routes(routes, upstream_of) -> list:
    """The routes (with a .provider) that may serve one model, in order: those whose vendor has a
    key; the first sandboxed one only when no route has a real vendor. `upstream_of(provider)`
    gives the Upstream or None."""
    found = [(route, upstream_of(route.provider)) for route in routes]
    real = [route for route, up in found if up is not None and not up.sandbox]
    return real or [route for route, up in found if up is not None][:1]


def upstream_for(provider: str) -> Upstream | None:
    family = PROVIDER_FAMILY.get(provider)
    return upstream_for_family(family) if family else None


def provider_enabled(provider: str) -> bool:
    return upstream_for(provider) is not None


def reset() -> None:
    """Forget the cached configuration (tests change the environment)."""
    upstream_for_family.cache_clear()
