"""The studio (/studio/): estimates are billing.pricing's, jobs start and are read through the jobs
API's functions with the dashboard key (charged once, by the first read of the completion), the
gallery shows only the user's delivered results, another user's job is 404, every POST needs CSRF."""

import base64
import contextlib
import io
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from accounts.keys import DASHBOARD_KEY_NAME
from billing.pricing import VideoConfig, image_cost, video_cost
from llm.catalog import snapshot
from media_jobs.models import MediaAsset, MediaJob

from ..conftest import balance_of, usage_rows
from tests.llm.test_dashboard_chat import csrf_of, session_client

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def vendors_configured(vendors_in_this_process):
    """Every test here calls views in-process with the vendors configured."""


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def money_in(html: str) -> Decimal:
    return Decimal(re.search(r'data-estimate="([\d.]+)"', html).group(1))


def test_the_studio_page_and_its_partials(as_alice):
    html = as_alice.get("/studio/").content.decode()
    assert "Nano Banana" in html and 'data-testid="estimate"' in html and 'href="/studio/"' in html
    assert 'aria-current="page"' in html
    video = as_alice.get("/studio/", {"kind": "video", "model": "sora-2-pro-video"}).content.decode()
    assert 'name="duration"' in video and 'name="resolution"' in video and "1080p" in video
    params = as_alice.get(
        "/studio/params", {"kind": "video", "model": "sora-2-official"}, **HTMX
    ).content.decode()
    assert "<html" not in params and ">12 s<" in params
    assert as_alice.get("/studio/gallery", **HTMX).status_code == 200


def test_pages_need_a_session(client):
    for url in ("/studio/", "/studio/params", "/studio/estimate", "/studio/gallery"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    assert client.post("/studio/generate", {"prompt": "x"}).status_code in (401, 403)
    assert client.get("/studio/jobs/img_0123456789abcdef0123").status_code == 401


@pytest.mark.parametrize(
    "slug,n", [("nano-banana", "1"), ("nano-banana-pro", "3"), ("nano-banana-pro-4k", "4")]
)
def test_image_estimate_is_the_billing_price(as_alice, slug, n):
    html = as_alice.get("/studio/estimate", {"kind": "image", "model": slug, "n": n}, **HTMX).content.decode()
    assert money_in(html) == image_cost(snapshot().models[slug].per_image, int(n))


@pytest.mark.parametrize(
    "slug,params",
    [
        ("sora-2-pro-video", {"duration": "15", "resolution": "1080p"}),
        ("sora-2-official", {"duration": "4"}),
        ("sora-2-pro-official", {"duration": "12", "resolution": "720p"}),
    ],
)
def test_video_estimate_is_the_billing_price(as_alice, slug, params):
    model = snapshot().models[slug]
    html = as_alice.get(
        "/studio/estimate", {"kind": "video", "model": slug, **params}, **HTMX
    ).content.decode()
    config = VideoConfig(
        duration=int(params["duration"]),
        audio=False,
        mode=model.video_options.get("default_mode"),
        resolution=params.get("resolution") or model.video_options.get("default_resolution"),
    )
    assert money_in(html) == video_cost(model.per_video, model.video_options, config)


def test_an_impossible_video_configuration_says_why(as_alice):
    html = as_alice.get(
        "/studio/estimate", {"kind": "video", "model": "sora-2-official", "duration": "7"}, **HTMX
    ).content.decode()
    assert "is-invalid" in html and "4, 8, 12" in html


def test_the_studio_offers_and_estimates_only_sizes_the_price_covers(as_alice):
    def params(slug):
        return as_alice.get("/studio/params", {"kind": "image", "model": slug}, **HTMX).content.decode()

    assert '"2048x2048"' not in params("nano-banana-2") and '"1024x1024"' in params("nano-banana-2")
    assert '"2048x2048"' in params("nano-banana-pro") and '"2048x2048"' in params("nano-banana-pro-4k")
    html = as_alice.get(
        "/studio/estimate", {"kind": "image", "model": "nano-banana-2", "size": "2048x2048"}, **HTMX
    ).content.decode()
    assert "is-invalid" in html and "covers the 1K resolution tier" in html


def test_a_size_the_price_does_not_cover_is_refused_at_kickoff(api_server, committed, vendors):
    from ..conftest import make_user

    rich = make_user("rich", "5")
    with contextlib.closing(session_client(api_server, rich)) as web:
        token = csrf_of(web, "/studio/")
        response = web.post(
            "/studio/generate",
            data={
                "kind": "image",
                "model": "nano-banana-2",
                "prompt": "x",
                "size": "2048x2048",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": api_server + "/", "HX-Request": "true"},
        )
    assert response.status_code == 400 and "unsupported_parameter" in response.text
    assert not MediaJob.objects.filter(user=rich).exists() and balance_of(rich) == Decimal("5")


def test_generate_needs_the_csrf_token(alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.post("/studio/generate", {"kind": "image", "model": "nano-banana", "prompt": "a cat"})
    assert response.status_code == 403 and not MediaJob.objects.filter(user=alice).exists()


def test_another_users_job_is_404_and_not_in_my_gallery(client, alice, bob):
    job = MediaJob.objects.create(
        kind="image",
        user=bob,
        model="nano-banana",
        request={"prompt": "bob's"},
        hold_id=0,
        request_id="r",
        estimated_cost_usd=Decimal("0.03"),
    )
    MediaAsset.objects.create(
        user=bob,
        job=None,
        kind="image",
        model="nano-banana",
        path="media/bob.png",
        mime_type="image/png",
        prompt="bob's private picture",
    )
    client.force_login(alice)
    assert "bob&#x27;s private picture" not in client.get("/studio/").content.decode()
    assert "bob" not in client.get("/studio/gallery", **HTMX).content.decode()
    assert client.get(f"/studio/jobs/{job.pk}", **HTMX).status_code == 404


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_image_job_from_the_studio_is_charged_once_and_lands_in_the_gallery(
    api_server, celery_worker_proc, alice, vendors
):
    before = balance_of(alice)
    price = image_cost(snapshot().models["nano-banana"].per_image, 1)
    with contextlib.closing(session_client(api_server, alice)) as web:
        token = csrf_of(web, "/studio/")
        response = web.post(
            "/studio/generate",
            data={
                "kind": "image",
                "model": "nano-banana",
                "prompt": "a red fox",
                "n": "1",
                "input_image": png_data_uri(),
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": api_server + "/", "HX-Request": "true"},
        )
        assert response.status_code == 202, response.text
        job_id = re.search(r'id="job-(img_[0-9a-f]+)"', response.text).group(1)
        job = MediaJob.objects.get(pk=job_id)
        assert (
            job.api_key.name == DASHBOARD_KEY_NAME and job.config["inputs"]["images"]
        )  # the reference image
        deadline = time.time() + 30
        while True:
            card = web.get(f"/studio/jobs/{job_id}", headers={"HX-Request": "true"})
            assert card.status_code == 200
            if 'data-job-status="completed"' in card.text or time.time() > deadline:
                break
            time.sleep(0.3)
        assert (
            'data-job-status="completed"' in card.text and card.headers.get("HX-Trigger") == "gallery-changed"
        )
        web.get(f"/studio/jobs/{job_id}", headers={"HX-Request": "true"})  # a second read charges nothing
        gallery = web.get("/studio/gallery", headers={"HX-Request": "true"}).text
    assert "a red fox" in gallery and "/v1/llm/media/" in gallery
    assert balance_of(alice) == before - price
    rows = [r for r in usage_rows(alice) if r.endpoint == "image_job"]
    assert len(rows) == 1 and rows[0].cost_usd == price


def test_a_refused_kickoff_is_shown_in_the_form(api_server, committed, vendors):
    from ..conftest import make_user

    poor = make_user("poor", "0")
    with contextlib.closing(session_client(api_server, poor)) as web:
        token = csrf_of(web, "/studio/")
        response = web.post(
            "/studio/generate",
            data={"kind": "image", "model": "nano-banana", "prompt": "x", "csrfmiddlewaretoken": token},
            headers={"Referer": api_server + "/", "HX-Request": "true"},
        )
    assert response.status_code == 402 and "insufficient_balance" in response.text
    assert not MediaJob.objects.filter(user=poor).exists()


def test_downloads_are_named_from_the_prompt_and_model(client, committed):
    from media_jobs import storage

    assert (
        storage.download_name("A red fox in fresh snow, golden hour!", "nano-banana", "x/abc.png")
        == "a-red-fox-in-fresh-snow-golden-hour-nano-banana.png"
    )
    assert storage.safe_download_name('../evil"name.exe', Path("v.mp4")) == "evil-name.mp4"
    relative = storage.save("results", "image", b"\x89PNG\r\n\x1a\nfake", "image/png")
    token = storage.sign(relative)
    named = client.get(f"/v1/llm/media/{token}?name=a-red-fox-nano-banana.png")
    assert named.status_code == 200
    assert named["Content-Disposition"] == 'attachment; filename="a-red-fox-nano-banana.png"'
    assert "Content-Disposition" not in client.get(f"/v1/llm/media/{token}")  # plain links stay inline
