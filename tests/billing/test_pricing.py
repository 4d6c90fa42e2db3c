"""Prices from the published tables, computed by hand."""

from decimal import Decimal

import pytest

from billing.pricing import (
    TokenPrices,
    TokenUsage,
    VideoConfig,
    chat_cost,
    chat_worst_case,
    image_cost,
    video_cost,
)

DEEPSEEK_V4_PRO = TokenPrices(input=Decimal("2.40"), output=Decimal("4.00"))
HAIKU = TokenPrices(input=Decimal("0.80"), output=Decimal("4.00"), cached_input=Decimal("0.08"))


def test_deepseek_v4_pro_per_million_tokens():
    # 1,000 in × $2.40/1M + 500 out × $4.00/1M = 0.0024 + 0.002
    assert chat_cost(DEEPSEEK_V4_PRO, TokenUsage(prompt_tokens=1000, completion_tokens=500)) == Decimal(
        "0.0044"
    )


GEMINI_25_PRO = TokenPrices(
    input=Decimal("1.00"),
    output=Decimal("8.00"),
    cached_input=Decimal("0.10"),
    above=200_000,
    long=TokenPrices(input=Decimal("2.00"), output=Decimal("12.00"), cached_input=Decimal("0.20")),
)


def test_a_prompt_above_the_long_context_threshold_prices_every_token_at_the_tier():
    at = TokenUsage(prompt_tokens=200_000, completion_tokens=1_000)
    above = TokenUsage(prompt_tokens=200_001, cached_tokens=100_000, completion_tokens=1_000)
    # 200,000 × 1.00 + 1,000 × 8.00 = 208,000 / 1M
    assert chat_cost(GEMINI_25_PRO, at) == Decimal("0.208")
    # 100,001 × 2.00 + 100,000 × 0.20 + 1,000 × 12.00 = 200,002 + 20,000 + 12,000 = 232,002 / 1M
    assert chat_cost(GEMINI_25_PRO, above) == Decimal("0.232002")


def test_the_hold_of_a_prompt_that_may_pass_the_threshold_is_at_the_tier():
    # 300,000 × 2.00 + 1,000 × 12.00 = 612,000 / 1M; at 200,000: 200,000 × 1.00 + 1,000 × 8.00
    held = chat_worst_case(GEMINI_25_PRO, prompt_tokens=300_000, max_output_tokens=1_000)
    assert held == Decimal("0.612")
    assert chat_worst_case(GEMINI_25_PRO, prompt_tokens=200_000, max_output_tokens=1_000) == Decimal("0.208")


def test_minimax_m2_1_fractional_prices():
    prices = TokenPrices(input=Decimal("0.297"), output=Decimal("1.188"))
    # 12,345 × 0.297/1M = 0.003666465 ; 678 × 1.188/1M = 0.000805464 ; sum 0.004471929 → 0.00447193
    assert chat_cost(prices, TokenUsage(prompt_tokens=12345, completion_tokens=678)) == Decimal("0.00447193")


def test_cached_tokens_use_the_cached_price_and_reasoning_is_output():
    usage = TokenUsage(
        prompt_tokens=10_000, cached_tokens=8_000, completion_tokens=2_000, reasoning_tokens=1_500
    )
    # 2,000 × 0.80 + 8,000 × 0.08 + 2,000 × 4.00 = 1,600 + 640 + 8,000 = 10,240 / 1M
    assert chat_cost(HAIKU, usage) == Decimal("0.01024")


def test_cached_tokens_without_a_cached_price_pay_the_input_price():
    usage = TokenUsage(prompt_tokens=1_000_000, cached_tokens=500_000)
    assert chat_cost(DEEPSEEK_V4_PRO, usage) == Decimal("2.40")


def test_rounding_is_half_up_at_eight_places():
    prices = TokenPrices(input=Decimal("0.005"), output=Decimal("0"))
    assert chat_cost(prices, TokenUsage(prompt_tokens=1)) == Decimal("0.00000001")  # 0.000000005 → up
    assert chat_cost(prices, TokenUsage(prompt_tokens=0)) == Decimal("0")


def test_worst_case_counts_every_output_token():
    assert chat_worst_case(HAIKU, prompt_tokens=100, max_output_tokens=4096) == Decimal("0.016464")


@pytest.mark.parametrize(
    "per_image,delivered,expected",
    [("0.0312", 1, "0.0312"), ("0.1072", 2, "0.2144"), ("0.192", 0, "0"), ("0.035", 3, "0.105")],
)
def test_images_are_billed_per_delivered_image(per_image, delivered, expected):
    assert image_cost(Decimal(per_image), delivered) == Decimal(expected)


KLING_26 = {
    "default_duration": 5,
    "audio_multiplier": "2",
    "resolution_multipliers": {"1080p": "1", "720p": "0.75"},
}


def test_video_headline_is_the_default_configuration():
    assert video_cost(Decimal("0.315"), KLING_26, VideoConfig(5, "1080p", False, None)) == Decimal("0.315")


def test_video_duration_scales_linearly_and_audio_doubles():
    assert video_cost(Decimal("0.315"), KLING_26, VideoConfig(10, "1080p", True, None)) == Decimal("1.26")


def test_video_mode_and_resolution_multipliers():
    options = {"default_duration": 5, "mode_multipliers": {"master": "2.8", "pro": "1"}}
    assert video_cost(Decimal("0.405"), options, VideoConfig(5, None, False, "master")) == Decimal("1.134")
    assert video_cost(Decimal("0.315"), KLING_26, VideoConfig(5, "720p", False, None)) == Decimal("0.23625")


def test_catalog_prices_match_the_published_tables(committed):
    from llm.models import CatalogModel

    def price(slug):
        return CatalogModel.objects.get(slug=slug)

    assert (price("deepseek-v4-pro").input_per_mtok, price("deepseek-v4-pro").output_per_mtok) == (
        Decimal("2.40"),
        Decimal("4.00"),
    )
    assert (price("MiniMax-M2").input_per_mtok, price("MiniMax-M2").output_per_mtok) == (
        Decimal("2.079"),
        Decimal("8.316"),
    )
    assert price("nano-banana").per_image == Decimal("0.0312")
    assert price("nano-banana-pro-4k").per_image == Decimal("0.192")
    assert price("kling-2-6").per_video == Decimal("0.315")
    assert price("runway-gen-4-5").per_video == Decimal("0.750")
    haiku = price("claude-haiku-4-5")
    list_price = haiku.list_price
    assert haiku.input_per_mtok == Decimal(list_price["input"]) * Decimal("0.8")
    assert haiku.output_per_mtok == Decimal(list_price["output"]) * Decimal("0.8")
    assert list_price["source"].startswith("https://")
