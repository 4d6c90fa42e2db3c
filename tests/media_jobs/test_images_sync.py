"""Synchronous image generation over a socket, against the media fakes: the official OpenAI SDK's
images.generate, the native wrapper, fallback within the request, partial and empty deliveries,
output re-encoding, signed links, reference images and their SSRF refusals; balances, ledger
entries and usage rows checked after each."""

import base64
import io
import json
from decimal import Decimal

import httpx
import openai
import pytest
from PIL import Image

from billing import ledger
from billing.models import Hold, LedgerEntry
from media_jobs.models import MediaAsset

from ..conftest import balance_of, make_user, usage_rows

NANO, NANO_PRO = Decimal("0.0312"), Decimal("0.1072")
GPT_IMAGE_2, GPT_IMAGE_15, FLUX_PRO, GROK = (
    Decimal("0.0464"),
    Decimal("0.020"),
    Decimal("0.060"),
    Decimal("0.0352"),
)
ROUTE_WORDS = (
    "gemini_images",
    "openai_compat_fallback",
    "fal-ai",
    "gemini-2.5-flash-image",
    "fallback_images",
    "black-forest-labs",
    'provider":',
)


@pytest.fixture
def ivy(committed):
    # Ivy: $5, generates images through both surfaces.
    return make_user("ivy", "5")


@pytest.fixture
def client(api_server, ivy):
    return openai.OpenAI(api_key=ivy.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)


def native(api_server, user, body, **kwargs):
    return httpx.post(
        f"{api_server}/v1/llm/images/generations",
        headers={"X-API-Key": user.raw_key},
        json=body,
        timeout=30,
        **kwargs,
    )


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def data_uri(color=(200, 30, 30), size=(32, 32), fmt="PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def test_official_sdk_generates_two_nano_banana_pro_images_billed_per_image(client, ivy, vendors):
    resp = client.images.generate(
        model="nano-banana-pro",
        prompt="A cozy mountain cabin at sunrise",
        n=2,
        size="1024x1024",
        response_format="b64_json",
    )

    assert len(resp.data) == 2
    assert all(decode(d.b64_json).format == "PNG" for d in resp.data)
    assert [d.model_extra["mime_type"] for d in resp.data] == ["image/png", "image/png"]
    sent = vendors["gemini_images"].requests_of("generate")
    assert len(sent) == 2 and sent[0].path == "/v1beta/models/gemini-3-pro-image-preview:generateContent"
    assert sent[0].body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1", "imageSize": "1K"}
    assert balance_of(ivy) == Decimal("5") - 2 * NANO_PRO
    [row] = usage_rows(ivy)
    assert (row.endpoint, row.model, row.images, row.cost_usd, row.status) == (
        "images",
        "nano-banana-pro",
        2,
        2 * NANO_PRO,
        "ok",
    )
    assert LedgerEntry.objects.get(account=ivy.account, kind="charge").amount == -2 * NANO_PRO
    assert MediaAsset.objects.filter(user_id=ivy.pk, model="nano-banana-pro").count() == 2
    books_clean(ivy)


def test_a_failing_primary_falls_back_within_the_request_at_the_same_price(api_server, ivy, vendors):
    vendors["gemini_images"].script("500")
    resp = native(api_server, ivy, {"model": "nano-banana", "prompt": "a red fox in snow"})

    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["images_delivered"] == 1 and data["cost_usd"] == float(NANO)
    assert Decimal(str(data["balance_usd"])) == Decimal("5") - NANO == balance_of(ivy)
    assert len(vendors["gemini_images"].requests) == 1
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.path == "/fal-ai/nano-banana" and submit.body["num_images"] == 1
    assert not any(word in resp.text for word in ROUTE_WORDS)  # route identifiers stay private
    assert usage_rows(ivy)[-1].route == "fal:fal-ai/nano-banana"  # ... but operators see them
    books_clean(ivy)


def test_fewer_images_than_asked_are_billed_as_delivered(api_server, ivy, vendors):
    vendors["openai_images"].script("partial")
    resp = native(api_server, ivy, {"model": "gpt-image-2", "prompt": "three apples", "n": 3})

    data = resp.json()["data"]
    assert (data["images_requested"], data["images_delivered"]) == (3, 2)
    assert Decimal(str(data["cost_usd"])) == 2 * GPT_IMAGE_2
    assert balance_of(ivy) == Decimal("5") - 2 * GPT_IMAGE_2
    assert usage_rows(ivy)[-1].images == 2
    sent = vendors["openai_images"].requests_of("generate")[0].body
    assert (sent["model"], sent["n"], sent["size"]) == (
        "gpt-image-2",
        3,
        "1024x1024",
    ) and "response_format" not in sent
    books_clean(ivy)


def test_no_image_from_any_route_is_an_error_and_costs_nothing(client, ivy, vendors):
    with pytest.raises(openai.APIStatusError) as raised:
        client.images.generate(model="flux-2-pro", prompt="nothing at all [[fault:no_image]]")

    assert raised.value.status_code == 502
    assert raised.value.body["code"] == "no_output_delivered"
    assert len(vendors["fal"].requests_of("submit")) == 1
    assert len(vendors["fallback_images"].requests_of("generate")) == 1  # the generic fallback was tried too
    assert balance_of(ivy) == Decimal("5")
    [row] = usage_rows(ivy)
    assert (row.status, row.error_code, row.cost_usd) == ("error", "no_output_delivered", 0)
    books_clean(ivy)


def test_output_format_is_re_encoded_on_the_server(api_server, ivy, vendors):
    jpeg = native(api_server, ivy, {"model": "gpt-image-1-5", "prompt": "a lake", "output_format": "jpg"})
    webp = native(api_server, ivy, {"model": "gpt-image-1-5", "prompt": "a lake", "output_format": "webp"})

    jpeg_item, webp_item = jpeg.json()["data"]["data"][0], webp.json()["data"]["data"][0]
    assert jpeg_item["mime_type"] == "image/jpeg" and decode(jpeg_item["b64_json"]).format == "JPEG"
    assert webp_item["mime_type"] == "image/webp" and decode(webp_item["b64_json"]).format == "WEBP"
    assert jpeg.json()["data"]["output_format"] == "jpeg"
    assert balance_of(ivy) == Decimal("5") - 2 * GPT_IMAGE_15
    books_clean(ivy)


def test_response_format_url_is_a_signed_expiring_link_of_ours(api_server, ivy, vendors, monkeypatch):
    resp = native(
        api_server,
        ivy,
        {"model": "z-image", "prompt": "a lighthouse", "response_format": "url", "size": "800x600"},
    )

    url = resp.json()["data"]["data"][0]["url"]
    assert url.startswith(f"{api_server}/v1/llm/media/")
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).format == "PNG"
    assert vendors["fal"].requests_of("submit")[0].body["image_size"] == {"width": 800, "height": 600}
    tampered = httpx.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert tampered.status_code == 404 and tampered.json()["error"]["code"] == "media_link_invalid"

    import time

    from media_jobs import storage

    path = MediaAsset.objects.filter(user_id=ivy.pk).latest("id").path
    real_time = time.time
    monkeypatch.setattr("django.core.signing.time.time", lambda: real_time() - 2 * 24 * 3600)
    old = f"{api_server}/v1/llm/media/{storage.sign(path)}"
    monkeypatch.undo()
    assert httpx.get(old).status_code == 404  # older than GPUNIQ_MEDIA_URL_TTL_SECONDS


def test_reference_images_are_fetched_safely_and_sent_inline(api_server, ivy, vendors):
    ok = native(
        api_server,
        ivy,
        {
            "model": "nano-banana",
            "prompt": "redraw in watercolor",
            "input_images": [data_uri(), data_uri(fmt="JPEG").split(",", 1)[1]],
        },
    )

    assert ok.status_code == 200, ok.text
    sent = vendors["gemini_images"].requests_of("generate")[0]
    assert [i["format"] for i in sent.meta["input_images"]] == ["PNG", "JPEG"]
    refusals = {
        "https://127.0.0.1/cat.png": ("invalid_url", "url_private_address"),
        "https://169.254.169.254/latest/meta-data": ("invalid_url", "url_private_address"),
        "http://example.com/cat.png": ("invalid_url", "url_scheme"),
        "data:image/png;base64,bm90IGFuIGltYWdl": ("invalid_media", "url_bad_content"),
    }
    for url, (code, reason) in refusals.items():
        bad = native(api_server, ivy, {"model": "nano-banana", "prompt": "x", "input_images": [url]})
        assert bad.status_code == 400, url
        assert bad.json()["error"]["code"] == code and bad.json()["error"]["meta"]["reason_code"] == reason
        assert bad.json()["error"]["meta"]["field"] == "input_images[0]"
    no_edit = native(api_server, ivy, {"model": "flux-2-pro", "prompt": "x", "input_images": [data_uri()]})
    assert no_edit.status_code == 400 and no_edit.json()["error"]["code"] == "unsupported_parameter"
    assert balance_of(ivy) == Decimal("5") - NANO  # refusals cost nothing
    books_clean(ivy)


def test_edits_go_multipart_to_openai_and_as_json_to_the_generic_fallback(api_server, ivy, vendors):
    gpt = native(
        api_server, ivy, {"model": "gpt-image-1-5", "prompt": "add a hat", "input_images": [data_uri()]}
    )
    assert gpt.status_code == 200, gpt.text
    [edit] = vendors["openai_images"].requests_of("edit")
    assert edit.form.fields["model"] == ["gpt-image-1.5"] and edit.body["files"][0]["format"] == "PNG"

    vendors["gemini_images"].script("500")
    vendors["fal"].script("500")
    fallback = native(
        api_server, ivy, {"model": "nano-banana-2", "prompt": "add a hat", "input_images": [data_uri()]}
    )
    assert fallback.status_code == 200, fallback.text
    [edit] = vendors["fallback_images"].requests_of("edit")
    assert edit.body["model"] == "google/gemini-3.1-flash-image-preview"
    assert edit.meta["input_images"][0]["format"] == "PNG" and edit.body["response_format"] == "b64_json"
    assert fallback.json()["data"]["cost_usd"] == 0.05
    assert balance_of(ivy) == Decimal("5") - GPT_IMAGE_15 - Decimal("0.05")
    books_clean(ivy)


def test_requests_are_validated_before_any_hold(api_server, ivy, vendors):
    cases = [
        ({"model": "nano-banana", "prompt": "x", "n": 5}, 400, "invalid_parameter", "n"),
        ({"model": "nano-banana", "prompt": "x" * 4001}, 400, "invalid_parameter", "prompt"),
        ({"model": "nano-banana"}, 400, "missing_parameter", "prompt"),
        ({"model": "nano-banana", "prompt": "x", "size": "huge"}, 400, "invalid_parameter", "size"),
        (
            {"model": "nano-banana", "prompt": "x", "output_format": "gif"},
            400,
            "invalid_parameter",
            "output_format",
        ),
        ({"model": "gpt-4o", "prompt": "x"}, 400, "wrong_model_kind", None),
        ({"model": "no-such-model", "prompt": "x"}, 404, "model_not_found", None),
    ]
    for body, status, code, field in cases:
        resp = native(api_server, ivy, body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), body
        if field:
            assert resp.json()["error"]["meta"]["field"] == field
    assert not vendors["gemini_images"].requests
    assert balance_of(ivy) == Decimal("5") and not Hold.objects.filter(account=ivy.account).exists()


def test_the_covered_quality_and_the_4k_default_size_are_sent(client, ivy, vendors):
    client.images.generate(model="nano-banana-pro-4k", prompt="a city at night")
    client.images.generate(model="gpt-4o-image", prompt="a city at night", quality="low")
    client.images.generate(
        model="gpt-4o-image", prompt="a city at night", extra_body={"quality": "ultra-mega"}
    )

    config = vendors["gemini_images"].requests[0].body["generationConfig"]["imageConfig"]
    assert config["imageSize"] == "4K"  # nano-banana-pro-4k defaults to 4096x4096 (and is priced for it)
    first, second = (r.body for r in vendors["openai_images"].requests_of("generate"))
    # an unknown value falls back silently to the model's default: the quality its price covers
    assert first["quality"] == second["quality"] == "low"


def test_grok_image_through_curl_shaped_call(api_server, ivy, vendors):
    resp = httpx.post(
        f"{api_server}/v1/openai/images/generations",
        headers={"Authorization": f"Bearer {ivy.raw_key}", "Content-Type": "application/json"},
        content=json.dumps(
            {
                "model": "grok-4-image",
                "prompt": "Studio portrait of an astronaut",
                "n": 1,
                "size": "1024x1024",
            }
        ),
    )

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"created", "data"} and "cost_usd" not in body
    assert body["data"][0]["mime_type"] == "image/jpeg"  # png is a pass-through: xAI's JPEG comes back as is
    assert Decimal(resp.headers["x-gpuniq-cost-usd"]) == GROK
    sent = vendors["xai_images"].requests[0].body
    assert sent == {
        "model": "grok-2-image",
        "prompt": "Studio portrait of an astronaut",
        "n": 1,
        "response_format": "b64_json",
    }


def test_a_content_policy_refusal_stops_the_chain_and_is_free(client, ivy, vendors):
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="gpt-image-2", prompt="forbidden [[fault:content_policy]]")

    assert raised.value.body["code"] == "content_policy_violation"
    assert not vendors["fallback_images"].requests
    assert balance_of(ivy) == Decimal("5")
    books_clean(ivy)


def test_insufficient_balance_is_a_402_and_nothing_is_called(api_server, vendors, committed):
    poor = make_user("poor", "0.05")
    resp = native(api_server, poor, {"model": "nano-banana-pro", "prompt": "x"})
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "insufficient_balance"
    assert not vendors["gemini_images"].requests and balance_of(poor) == Decimal("0.05")
