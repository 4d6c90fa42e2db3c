"""Video prices are exact to the public docs (issue 12 §7): every video SKU's default configuration,
as the API resolves it, costs what the docs' table says, and Kling's tiers cost the docs' tier
prices to the cent (no rounded multipliers)."""

import re
from decimal import Decimal
from pathlib import Path

import pytest

from billing.pricing import VideoConfig, exact_factor, video_cost
from media_jobs.video_options import resolve

DOCS = Path("/work/shared/reference/gpuniq-llm-api-docs.txt")  # the product's public docs, where present
ROW = re.compile(r"^\| [^|]+ \| ([a-z0-9.-]+) \| \$(\d+\.\d+) \| [^|]* \|$")
# The docs' "Video Generation" table, verbatim (kept here so the test runs where the docs file is not)
DOCS_TABLE = """\
| Family | Slug | Headline / video | Notes |
|---|---|---|---|
| OpenAI Sora 2 | sora-2-video | $0.060 | Sora 2, default 10s |
| OpenAI Sora 2 Pro | sora-2-pro-video | $1.000 | Premium quality, 10s |
| Sora 2 Official | sora-2-official | $0.480 | 8s, official API |
| Sora 2 Pro Official | sora-2-pro-official | $0.560 | 8s 1080p, official API |
| Google Veo 3.1 Lite | veo-3-1-lite | $0.100 | 720p / 1080p |
| Google Veo 3.1 Fast | veo-3-1-fast | $0.200 | Balanced 720p / 1080p |
| Google Veo 3.1 Quality | veo-3-1-quality | $1.200 | Flagship Google video |
| Kling 2.1 Pro | kling-2-1 | $0.405 | Standard / Pro / Master tiers, 5s or 10s, i2v |
| Kling 2.5 Turbo Pro | kling-2-5-turbo-pro | $0.315 | 5s or 10s, t2v / i2v |
| Kling 2.6 | kling-2-6 | $0.315 | Optional audio, 5s or 10s, t2v / i2v |
| Kling 3.0 | kling-3-0 | $0.504 | 720p / 1080p / 4K, audio, multi-shot to 15s |
| Kling O3 (Video) | kling-o3-video | $0.150 | Premium audio video, 5s |
| Kling 2.6 Motion Control | kling-2-6-motion-control | $0.504 | 720p / 1080p video-to-video |
| Kling 3.0 Motion Control | kling-3-0-motion-control | $0.756 | 720p / 1080p video-to-video |
| Kling AI Avatar Pro | kling-avatar-pro | $1.035 | 1080p lip-sync, up to 15s |
| Kling AI Avatar Standard | kling-avatar-standard | $0.506 | 720p lip-sync, up to 15s |
| Hailuo 02 | hailuo-02 | $0.200 | 768p, 6s default |
| Hailuo 2.3 | hailuo-2-3 | $0.350 | 768p 6s |
| Seedance 1.0 Pro | seedance-1-0-pro | $0.210 | ByteDance 720p 5s |
| Seedance 1.5 Pro | seedance-1-5-pro | $0.160 | ByteDance 720p 5s |
| Seedance 2 | seedance-2 | $0.200 | ByteDance 720p 5s |
| Alibaba Wan 2.2 Fast | wan-2-2-fast | $0.120 | 720p fast tier |
| Alibaba Wan 2.5 | wan-2-5 | $0.600 | 720p 5s |
| Alibaba Wan 2.6 | wan-2-6 | $0.800 | 720p 5s flagship |
| Wan Animate | wan-animate | $0.150 | 720p animation |
| Happy Horse | happy-horse | $0.160 | 720p |
| Grok Imagine Video | grok-imagine-video | $0.300 | xAI video, 6s |
| Runway Gen-4.5 | runway-gen-4-5 | $0.750 | Runway flagship 5s |
"""


def docs_video_table(text: str = DOCS_TABLE) -> dict[str, Decimal]:
    return {m[1]: Decimal(m[2]) for line in text.splitlines() if (m := ROW.match(line.strip()))}


@pytest.mark.skipif(not DOCS.exists(), reason="the product docs are not on this machine")
def test_the_table_here_is_the_docs_table():
    assert DOCS_TABLE in DOCS.read_text()


def inputs_for(model) -> dict:
    """The least a request needs to be valid for the model's default task."""
    tasks = model.video_options.get("tasks") or ["t2v"]
    body = {"model": model.slug, "prompt": "a lighthouse"}
    if "v2v" in tasks:
        body.update(image_url="https://example.com/frame.png", video_url="https://example.com/move.mp4")
    elif "t2v" not in tasks:
        body["image_url"] = "https://example.com/frame.png"
    return body


@pytest.fixture
def video_models(committed):
    from llm.catalog import snapshot

    return {slug: m for slug, m in snapshot().models.items() if m.kind == "video"}


def test_every_video_sku_default_configuration_costs_the_docs_price(video_models):
    table = docs_video_table()
    assert len(table) >= 28 and set(table) == set(video_models)
    wrong = {}
    for slug, headline in table.items():
        model = video_models[slug]
        cost = resolve(model, inputs_for(model)).cost(model)
        if cost != headline:
            wrong[slug] = (str(cost), str(headline))
    assert wrong == {}


@pytest.mark.parametrize(
    "body, price",
    [
        ({"mode": "master", "duration": 5}, "1.26"),  # fal $1.40 x 0.9
        ({"mode": "standard", "duration": 10}, "0.45"),  # fal $0.25 x 0.9 x 2
        ({"mode": "standard", "duration": 5}, "0.225"),
        ({"mode": "pro", "duration": 10}, "0.81"),
        ({"mode": "master", "duration": 10}, "2.52"),
    ],
)
def test_kling_2_1_tiers_cost_the_exact_tier_price(video_models, body, price):
    model = video_models["kling-2-1"]
    request = resolve(model, {**inputs_for(model), **body})
    assert request.cost(model) == Decimal(price)


def test_other_tier_ratios_are_exact(video_models):
    motion = video_models["kling-3-0-motion-control"]
    request = resolve(motion, {**inputs_for(motion), "resolution": "720p"})
    assert request.cost(motion) == Decimal("0.585")  # fal standard $0.13/s x 0.9 x 5 s
    sora = video_models["sora-2-pro-video"]
    assert resolve(sora, {**inputs_for(sora), "resolution": "1080p"}).cost(sora) == Decimal("1.66666667")


def test_ratios_round_once_half_up_to_the_eighth_place():
    assert exact_factor("28/9") * 9 == 28 and exact_factor("0.75") == Decimal("0.75")
    options = {"default_duration": 3, "resolution_multipliers": {"x": "1/3"}}
    # 0.00000005 x 1/3 x 3 = 0.00000005 exactly: no intermediate rounding may lose it
    assert video_cost(Decimal("0.00000005"), options, VideoConfig(9, "x", False, None)) == Decimal(
        "0.00000005"
    )
    assert video_cost(
        Decimal("0.00000001"), {"default_duration": 2}, VideoConfig(1, None, False, None)
    ) == Decimal("0.00000001")  # 0.000000005 rounds half up
