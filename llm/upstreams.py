"""Which upstream providers are configured: UPSTREAM_<P>_BASE_URL and UPSTREAM_<P>_API_KEY.

A provider without a key is disabled. With GPUNIQ_SANDBOX=1 every provider without a key is
served by the built-in sandbox (simulated replies, clearly marked). Read once per process.
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
}

# catalog provider name → credential family
PROVIDER_FAMILY = {
    "openai": "openai", "openai_images": "openai", "openai_video": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini", "gemini_images": "gemini",
    "xai": "xai", "xai_images": "xai",
    "deepseek": "deepseek", "minimax": "minimax",
    "openai_compat_fallback": "fallback",
    "fal": "fal",
}


@dataclass(frozen=True)
class Upstream:
    family: str
    base_url: str
    api_key: str
    sandbox: bool = False


@cache
def upstream_for_family(family: str) -> Upstream | None:
    prefix, default_base = FAMILIES[family]
    key = os.environ.get(f"UPSTREAM_{prefix}_API_KEY", "")
    base = os.environ.get(f"UPSTREAM_{prefix}_BASE_URL", "") or default_base
    if key:
        return Upstream(family=family, base_url=base.rstrip("/"), api_key=key)
    if settings.GPUNIQ_SANDBOX:
        return Upstream(family=family, base_url="sandbox:", api_key="", sandbox=True)
    return None


def upstream_for(provider: str) -> Upstream | None:
    family = PROVIDER_FAMILY.get(provider)
    return upstream_for_family(family) if family else None


def provider_enabled(provider: str) -> bool:
    return upstream_for(provider) is not None


def reset() -> None:
    """Forget the cached configuration (tests change the environment)."""
    upstream_for_family.cache_clear()
