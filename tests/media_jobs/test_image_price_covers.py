"""Issue #12 §1 for images: the flat per-image price bounds what the vendor can bill. The vendor
gets an explicit configuration the price covers (GPT Image: an explicit quality, never OpenAI's
default `auto`; FLUX / Z-Image: at most the covered megapixels; Gemini 3 image: at most the covered
tier); a hint above it is a 400 unsupported_parameter before any hold or vendor call, on every
image surface. The fakes bill as the vendors publish (tests/fakes/openai_images.py TOKEN_PRICES,
fal's per-megapixel rates below), so each test compares the vendor's bill with the charge."""

import math
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import Hold
from media_jobs.models import MediaJob

from ..conftest import balance_of, make_user, usage_rows

MEGAPIXEL = 1024 * 1024


@pytest.fixture
def ned(committed):
    # Ned: $5, asks for whatever the vendors would bill most for.
    return make_user("ned", "5")


@pytest.fixture
def sdk(api_server, ned):
    return openai.OpenAI(api_key=ned.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)


def native(api_server, user, path, body):
    return httpx.post(
        f"{api_server}/v1/llm/{path}", headers={"X-API-Key": user.raw_key}, json=body, timeout=30
    )


def fal_flux_2_pro_bill(width: int, height: int) -> Decimal:
    """fal FLUX.2 [pro]: $0.03 the first megapixel, $0.015 each further one, rounded up."""
    megapixels = math.ceil(width * height / MEGAPIXEL)
    return Decimal("0.03") + Decimal("0.015") * (megapixels - 1)


@pytest.mark.parametrize("slug", ["gpt-image-1-5", "gpt-4o-image", "gpt-image-2"])
@pytest.mark.parametrize(
    "hints",
    [{}, {"quality": "auto"}, {"quality": "low"}, {"quality": "ultra-mega"}, {"size": "1536x1024"}],
)
def test_gpt_image_is_asked_for_a_covered_quality_and_bills_no_more_than_the_charge(
    sdk, ned, vendors, slug, hints
):
    sdk.images.generate(model=slug, prompt="a lighthouse in a storm", extra_body=hints)

    [sent] = vendors["openai_images"].requests_of("generate")
    [row] = usage_rows(ned)
    assert row.status == "ok" and sent.meta["vendor_usd"] <= row.cost_usd, (sent.meta, row.cost_usd)
    assert sent.body["quality"] == "low"  # explicit: OpenAI's default `auto` picks the best (dearest)


REFUSED = [
    ("gpt-image-1-5", {"quality": "high"}, "quality", "($0.02/image) covers quality low"),
    ("gpt-image-1-5", {"quality": "medium"}, "quality", "covers quality low"),
    ("gpt-4o-image", {"quality": "hd"}, "quality", "covers quality low"),
    ("gpt-image-2", {"quality": "standard"}, "quality", "covers quality low"),
    ("gpt-image-1-5", {"size": "2048x2048"}, "size", "up to 1.5 megapixels"),
    ("flux-2-pro", {"size": "4096x4096"}, "size", "up to 3 megapixels"),
    ("flux-2-flex", {"size": "2048x2048"}, "size", "up to 3 megapixels"),
    ("z-image", {"size": "4096x4096"}, "size", "up to 4 megapixels"),
    ("nano-banana-pro", {"size": "4096x4096"}, "size", "covers the 2K resolution tier"),
    ("nano-banana-2", {"size": "2048x2048"}, "size", "covers the 1K resolution tier"),
]


@pytest.mark.parametrize("slug,hints,field,says", REFUSED)
def test_a_hint_above_the_price_is_refused_before_any_hold_or_vendor_call(
    api_server, sdk, ned, vendors, slug, hints, field, says
):
    native_reply = native(api_server, ned, "images/generations", {"model": slug, "prompt": "x", **hints})
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.images.generate(model=slug, prompt="x", extra_body=hints)

    for error in (native_reply.json()["error"], raised.value.body):
        assert (error["code"], error["meta"]) == ("unsupported_parameter", {"field": field, "model": slug})
        assert says in error["message"], error["message"]
        assert "000/image" not in error["message"]  # money as money: "$0.02/image"
    assert native_reply.status_code == 400
    assert not any(fake.requests for fake in vendors.values())
    assert not Hold.objects.filter(account=ned.account).exists() and balance_of(ned) == Decimal("5")


def test_image_jobs_refuse_an_uncovered_tier_before_the_job_exists(api_server, ned, vendors):
    reply = native(
        api_server, ned, "images/jobs", {"model": "nano-banana-pro", "prompt": "x", "size": "4096x2304"}
    )

    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["meta"] == {"field": "size", "model": "nano-banana-pro"}
    assert not MediaJob.objects.filter(user=ned).exists()
    assert not Hold.objects.filter(account=ned.account).exists() and not vendors["gemini_images"].requests


def test_covered_sizes_reach_the_vendor_as_asked_and_bill_within_the_price(api_server, ned, vendors):
    flux = native(
        api_server, ned, "images/generations", {"model": "flux-2-pro", "prompt": "x", "size": "1920x1080"}
    )
    pro = native(
        api_server,
        ned,
        "images/generations",
        {"model": "nano-banana-pro", "prompt": "x", "size": "2048x2048"},
    )

    assert (flux.status_code, pro.status_code) == (200, 200), (flux.text, pro.text)
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.body["image_size"] == {"width": 1920, "height": 1080}
    assert fal_flux_2_pro_bill(1920, 1080) <= Decimal(str(flux.json()["data"]["cost_usd"]))
    [gemini] = vendors["gemini_images"].requests
    assert gemini.body["generationConfig"]["imageConfig"]["imageSize"] == "2K"  # $0.134 list, 1K and 2K alike
