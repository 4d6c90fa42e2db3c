"""Cost from usage. One rule everywhere: compute exactly in Decimal, quantise once to 1e-8 USD
at the end, rounding half up (billing.money.usd).

Chat: (prompt - cached) × input + cached × cached_input (input if none) + completion × output,
per 1M tokens. Reasoning tokens are part of completion tokens (OpenAI's convention) and are
billed at the output price. Images: per delivered image. Video: headline × duration/default ×
multipliers (audio, mode, resolution) from the catalog's video options.
"""

from dataclasses import dataclass
from decimal import Decimal

from .money import ZERO, usd

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TokenPrices:
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


def chat_cost(prices: TokenPrices, usage: TokenUsage) -> Decimal:
    cached = min(max(usage.cached_tokens, 0), max(usage.prompt_tokens, 0))
    uncached = max(usage.prompt_tokens, 0) - cached
    cached_price = prices.cached_input if prices.cached_input is not None else prices.input
    raw = (uncached * prices.input + cached * cached_price + max(usage.completion_tokens, 0) * prices.output)
    return usd(raw / MILLION)


def chat_worst_case(prices: TokenPrices, *, prompt_tokens: int, max_output_tokens: int) -> Decimal:
    """The hold for a chat request: every prompt token uncached, every output token used."""
    return chat_cost(prices, TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens))


def image_cost(per_image: Decimal, delivered: int) -> Decimal:
    return usd(per_image * max(delivered, 0))


@dataclass(frozen=True)
class VideoConfig:
    duration: int
    resolution: str | None
    audio: bool
    mode: str | None


def video_cost(per_video: Decimal, options: dict, config: VideoConfig) -> Decimal:
    """Scale the headline price (the default configuration) to the requested configuration."""
    default_duration = Decimal(options.get("default_duration") or config.duration or 1)
    price = per_video * Decimal(config.duration) / default_duration
    if config.audio:
        price *= Decimal(str(options.get("audio_multiplier", "2")))
    if config.mode:
        price *= Decimal(str(options.get("mode_multipliers", {}).get(config.mode, "1")))
    if config.resolution:
        price *= Decimal(str(options.get("resolution_multipliers", {}).get(config.resolution, "1")))
    return usd(price) if price > ZERO else ZERO
