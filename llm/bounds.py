"""The most a chat request can be billed, as sent: what its hold must cover.

prompt: llm/tokens.py's bound (exact o200k_base count for OpenAI models), priced at the cache-write
premium when the request asks an Anthropic model to write its prompt cache.
output: per candidate, the output limit each route's vendor is bound to — the client's max_tokens
(or max_completion_tokens, whichever is larger), else the gateway's default, which the providers
then send — plus the thinking budget a vendor may spend beyond it (Anthropic's budget_tokens,
Gemini's thinkingBudget, or the model's thinking ceiling when the budget is dynamic); times the
candidates asked for (n / candidateCount). A model with several routes is bounded by the largest.
"""

from dataclasses import dataclass
from decimal import Decimal

from billing.pricing import CACHE_WRITE_1H, CACHE_WRITE_5M

from .catalog import ModelInfo
from .providers.anthropic import BUDGETS as ANTHROPIC_BUDGETS
from .providers.gemini import THINKING_BUDGETS as GEMINI_BUDGETS, is_thinking_model
from .tokens import prompt_bound
from .upstreams import upstream_for

NON_STREAM_OUTPUT_RESERVE = 4096
STREAM_OUTPUT_RESERVE = 16384
THINKING_WITHIN_LIMIT = (
    "openai",
    "anthropic",
    "google",
)  # vendors whose thinking a router keeps in max_tokens
GEMINI_THINKING_CEILING = 32768  # Gemini 2.5 Pro's largest budget; dynamic thinking stays below it
IMAGE_TOKENS = 5_000  # per image: Anthropic <= ~1,600 (~4,800 on Opus 4.7), OpenAI tiles <= 1,445,
# patch models <= 1,536 x 2.46, Gemini 3 <= 1,120; a catalog model may name its own (image_tokens)


@dataclass(frozen=True)
class ChatBound:
    prompt_tokens: int
    output_tokens: int  # all candidates, thinking included
    prompt_price_factor: Decimal  # 1, or the cache-write premium
    base_output: int  # per candidate, without thinking: the limit the providers send


def client_limit(body: dict) -> int | None:
    limits = [v for v in (body.get("max_completion_tokens"), body.get("max_tokens")) if isinstance(v, int)]
    return max(limits) if limits else None


def default_limit(model: ModelInfo, stream: bool) -> int:
    return min(
        model.max_output or NON_STREAM_OUTPUT_RESERVE,
        STREAM_OUTPUT_RESERVE if stream else NON_STREAM_OUTPUT_RESERVE,
    )


def _candidates(body: dict) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _anthropic_thinking(body: dict) -> int:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        budget = thinking.get("budget_tokens")
        return budget if isinstance(budget, int) and budget > 0 else max(ANTHROPIC_BUDGETS.values())
    return max(ANTHROPIC_BUDGETS.values()) if body.get("reasoning_effort") else 0


def _gemini_thinking(body: dict, upstream_model: str, slug: str) -> int:
    reasoning = body.get("reasoning")
    effort = body.get("reasoning_effort") or (
        reasoning.get("effort") if isinstance(reasoning, dict) else None
    )
    if effort in GEMINI_BUDGETS and GEMINI_BUDGETS[effort] > 0 and "gemini-3" not in upstream_model:
        return max(GEMINI_BUDGETS[effort], 128)
    if effort in GEMINI_BUDGETS or is_thinking_model(f"{upstream_model} {slug}"):
        return GEMINI_THINKING_CEILING
    return 0


def _predicted(body: dict) -> int:
    """OpenAI's predicted outputs: rejected prediction tokens are billed as output too."""
    prediction = body.get("prediction")
    content = prediction.get("content") if isinstance(prediction, dict) else None
    return len(str(content).encode("utf-8", "surrogatepass")) if content else 0


# fields with which a client turns on the thinking of a hybrid model that the catalog lists as not
# reasoning: DeepSeek's `thinking`, Qwen's `enable_thinking` / `thinking_budget`, OpenRouter's
# `reasoning`, and `reasoning_effort`; each vendor forwards them as they are
THINKING_SWITCHES = ("thinking", "enable_thinking", "thinking_budget", "reasoning", "reasoning_effort")
THINKING_OFF = (None, False, 0, "none", "disabled")


def asks_to_think(body: dict) -> bool:
    """Whether the request turns a model's thinking on (anything but an explicit off)."""
    for name in THINKING_SWITCHES:
        value = body.get(name)
        if isinstance(value, dict):
            value = value.get("type", value.get("effort", value.get("enabled", True)))
        if value not in THINKING_OFF:
            return True
    return False


def route_output(family: str, body: dict, base: int, upstream_model: str, model: ModelInfo) -> int:
    if family == "anthropic":
        return base + _anthropic_thinking(body)  # Anthropic takes one candidate (n > 1 is refused)
    if family == "gemini":
        return (base + _gemini_thinking(body, upstream_model, model.slug)) * _candidates(body)
    reasoning = model.reasoning or asks_to_think(body)
    if family in ("openai", "sandbox") or not reasoning or model.vendor in THINKING_WITHIN_LIMIT:
        # OpenAI's reasoning counts within the limit; so does an Anthropic or Google model's thinking
        # behind an OpenAI-compatible router (OpenRouter sizes its budget inside max_tokens)
        return (base + _predicted(body)) * _candidates(body)
    # other OpenAI-compatible reasoning models (DeepSeek's reasoner: chain of thought beyond
    # max_tokens) may think up to their whole output ceiling on top of the answer
    return (base + (model.max_output or STREAM_OUTPUT_RESERVE)) * _candidates(body)


LONG_CONTEXT_BETA = "context-1m"  # Anthropic's beta that opens a 1M-token window on 200K models
LONG_CONTEXT = 1_000_000


def context_window(model: ModelInfo, anthropic_headers: dict | None = None) -> int | None:
    """The largest prompt the vendor accepts for this request: the catalog's window, or 1M tokens
    when the client sends Anthropic's long-context beta (the prompt bound is clamped to it)."""
    beta = str((anthropic_headers or {}).get("anthropic-beta") or "")
    if LONG_CONTEXT_BETA in beta and model.context_window:
        return max(model.context_window, LONG_CONTEXT)
    return model.context_window


def chat_bound(
    model: ModelInfo,
    body: dict,
    *,
    stream: bool,
    anthropic_body: dict | None = None,
    anthropic_headers: dict | None = None,
) -> ChatBound:
    """`anthropic_body` / `anthropic_headers`: the Anthropic Messages request `body` was translated
    from; Anthropic routes send it as it is, so their part of the bound is taken from it (thinking,
    cache_control, size, the long-context beta)."""
    base = client_limit(body) or default_limit(model, stream)
    families = []
    for route in model.live_routes():
        upstream = upstream_for(route.provider)
        families.append(
            ("sandbox" if upstream is None or upstream.sandbox else upstream.family, route.upstream_model)
        )
    native = (
        anthropic_body if anthropic_body is not None and any(f == "anthropic" for f, _ in families) else None
    )
    output = max(
        (
            route_output(f, native if f == "anthropic" and native else body, base, m, model)
            for f, m in families
        ),
        default=base,
    )
    exact = model.vendor.lower() == "openai"  # GPT-4o and later, o-series: o200k_base on every route
    image_tokens = getattr(model, "image_tokens", None) or IMAGE_TOKENS
    window = context_window(model, anthropic_headers)
    prompt = prompt_bound(body, image_tokens=image_tokens, context_window=window, exact=exact)
    if native is not None:
        prompt = max(prompt, prompt_bound(native, image_tokens=image_tokens, context_window=window))
    factor = Decimal(1)
    if any(f == "anthropic" for f, _ in families):
        text = str(native or body)  # blocks, tools, system, or the request itself (automatic caching)
        if "cache_control" in text:
            factor = CACHE_WRITE_1H if "'ttl': '1h'" in text else CACHE_WRITE_5M
    return ChatBound(prompt_tokens=prompt, output_tokens=output, prompt_price_factor=factor, base_output=base)
