"""Cost from usage. One rule everywhere: compute exactly in Decimal, quantise once to 1e-8 USD
at the end, rounding half up (billing.money.usd).

Chat: (prompt - cached - cache writes) × input + cached × cached_input (input if none) + cache
writes × input × 1.25 (5-minute TTL) or × 2 (1-hour TTL, Anthropic's published multipliers)
+ completion × output, per 1M tokens; a prompt above a model's long-context threshold prices the
whole request at its long-context tier. Reasoning tokens are part of completion tokens (OpenAI's
convention) and are billed at the output price. Images: per delivered image. Video: headline ×
duration/default × multipliers (audio, mode, resolution) from the catalog's video options,
computed as exact fractions and rounded once.
"""

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .money import CENT_MILLIONTH, ZERO, usd

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0  # prompt tokens written to the cache with the 5-minute TTL
    cache_write_1h_tokens: int = 0  # ... with the 1-hour TTL

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TokenPrices:
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    # a long-context tier (Anthropic's, Google's, xAI's): a request whose prompt is above `above`
    # tokens (cache reads and writes included) is priced at `long`, every token of it
    above: int | None = None
    long: "TokenPrices | None" = None

    def for_prompt(self, prompt_tokens: int) -> "TokenPrices":
        """The prices of a request with a prompt of `prompt_tokens` tokens."""
        if self.long is not None and self.above is not None and prompt_tokens > self.above:
            return self.long
        return self


CACHE_WRITE_5M = Decimal("1.25")
CACHE_WRITE_1H = Decimal("2")


def chat_cost(prices: TokenPrices, usage: TokenUsage) -> Decimal:
    prompt = max(usage.prompt_tokens, 0)
    prices = prices.for_prompt(prompt)
    cached = min(max(usage.cached_tokens, 0), prompt)
    write_1h = min(max(usage.cache_write_1h_tokens, 0), prompt - cached)
    write_5m = min(max(usage.cache_write_tokens, 0), prompt - cached - write_1h)
    uncached = prompt - cached - write_1h - write_5m
    cached_price = prices.cached_input if prices.cached_input is not None else prices.input
    raw = (
        uncached * prices.input
        + cached * cached_price
        + (write_5m * CACHE_WRITE_5M + write_1h * CACHE_WRITE_1H) * prices.input
        + max(usage.completion_tokens, 0) * prices.output
    )
    return usd(raw / MILLION)


def chat_worst_case(
    prices: TokenPrices,
    *,
    prompt_tokens: int,
    max_output_tokens: int,
    prompt_price_factor: Decimal = Decimal(1),
) -> Decimal:
    """The hold for a chat request: every prompt token uncached (or written to the cache at
    `prompt_price_factor` × input), every output token used, at the prices of a prompt that size."""
    prices = prices.for_prompt(prompt_tokens)
    raw = prompt_tokens * prices.input * prompt_price_factor + max_output_tokens * prices.output
    return usd(raw / MILLION)


def image_cost(per_image: Decimal, delivered: int) -> Decimal:
    return usd(per_image * max(delivered, 0))


@dataclass(frozen=True)
class VideoConfig:
    duration: int
    resolution: str | None
    audio: bool
    mode: str | None


def exact_factor(value: str | int | float | Decimal) -> Fraction:
    """A catalog multiplier as an exact number: a decimal string ("0.75") or a ratio ("28/9")."""
    return Fraction(str(value)) if isinstance(value, str) and "/" in value else Fraction(Decimal(str(value)))


def _usd_of(exact: Fraction) -> Decimal:
    """Round an exact amount once, half up, to 1e-8 USD (no intermediate rounding at all)."""
    units, rest = divmod(exact.numerator * 10**8, exact.denominator)
    return (Decimal(units + (1 if 2 * rest >= exact.denominator else 0)) / 10**8).quantize(CENT_MILLIONTH)


def video_cost(per_video: Decimal, options: dict[str, Any], config: VideoConfig) -> Decimal:
    """Scale the headline price (the default configuration) to the requested configuration, exactly:
    multipliers are ratios of the vendor's published prices ("28/9" for Kling 2.1 Master = $1.26 /
    $0.405), so a tier's price is the docs' price to the cent, not a rounded multiplier's."""
    default_duration = options.get("default_duration") or config.duration or 1
    price = Fraction(Decimal(per_video)) * config.duration / default_duration
    if config.audio:
        price *= exact_factor(options.get("audio_multiplier", "2"))
    if config.mode:
        price *= exact_factor(options.get("mode_multipliers", {}).get(config.mode, "1"))
    if config.resolution:
        price *= exact_factor(options.get("resolution_multipliers", {}).get(config.resolution, "1"))
    return _usd_of(price) if price > 0 else ZERO
