"""Which provider implementation serves a route."""

from ..upstreams import upstream_for
from .base import ChatProvider, Route
from .openai_compat import OpenAICompatProvider
from .sandbox import SandboxProvider

_cache: dict[str, ChatProvider] = {}
_sandbox = SandboxProvider()


def provider_for(route: Route) -> ChatProvider | None:
    upstream = upstream_for(route.provider)
    if upstream is None:
        return None
    if upstream.sandbox:
        return _sandbox
    found = _cache.get(route.provider)
    if found is None:
        if upstream.family == "anthropic":
            from .anthropic import AnthropicProvider

            found = AnthropicProvider(upstream)
        elif upstream.family == "gemini":
            from .gemini import GeminiProvider

            found = GeminiProvider(upstream)
        else:
            found = OpenAICompatProvider(upstream, name=route.provider)
        _cache[route.provider] = found
    return found


def live_provider(route: Route) -> ChatProvider:
    """provider_for a live route (the catalog's live_routes: its upstream is configured)."""
    provider = provider_for(route)
    if provider is None:
        raise LookupError(f"no upstream is configured for route {route}")
    return provider


def reset() -> None:
    _cache.clear()
