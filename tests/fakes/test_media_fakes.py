"""Fast loopback tests for the fake image/video vendor servers (no Django, no DB).

Run: .venv/bin/python -m pytest tests/fakes/test_media_fakes.py -q -p no:django
"""

from __future__ import annotations

import base64
import io
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.fal import FakeFal  # noqa: E402
from tests.fakes.gemini_images import FakeGemini  # noqa: E402
from tests.fakes.openai_images import FakeOpenAIImages  # noqa: E402
from tests.fakes.openai_video import FakeOpenAIVideo  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Shadows tests/conftest.py's autouse fixture (it reads Django settings) so this
    module also runs with ``-p no:django``; these tests never touch Redis."""
    yield


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return Image.open(io.BytesIO(data)).size


def tiny_png(color=(10, 20, 30), size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def fal():
    with FakeFal(api_key="fal-key", steps=2, slow_seconds=0.3) as server:
        yield server
    assert not server.errors, server.errors


@pytest.fixture
def oai():
    with FakeOpenAIImages(api_key="sk-test") as server:
        yield server
    assert not server.errors, server.errors


@pytest.fixture
def sora():
    with FakeOpenAIVideo(api_key="sk-test", steps=2) as server:
        yield server
    assert not server.errors, server.errors


@pytest.fixture
def gemini():
    with FakeGemini(api_key="g-key") as server:
        yield server
    assert not server.errors, server.errors


# ------------------------------------------------------------------------ fal
FAL_AUTH = {"Authorization": "Key fal-key"}


def fal_wait(url: str, max_polls: int = 20) -> list[dict]:
    seen = []
    for _ in range(max_polls):
        r = httpx.get(url, headers=FAL_AUTH)
        seen.append(r.json())
        assert r.status_code == (200 if seen[-1]["status"] == "COMPLETED" else 202)
        if seen[-1]["status"] == "COMPLETED":
            return seen
    return seen


def test_fal_image_happy_path(fal):
    assert httpx.post(f"{fal.base_url}/fal-ai/flux-2-pro", json={"prompt": "x"}).status_code == 401
    r = httpx.post(
        f"{fal.base_url}/fal-ai/flux-2-pro",
        headers=FAL_AUTH,
        json={"prompt": "a red fox", "num_images": 2, "image_size": {"width": 1600, "height": 900}},
    )
    assert r.status_code == 200
    sub = r.json()
    rid = sub["request_id"]
    assert sub["status_url"] == f"{fal.base_url}/fal-ai/flux-2-pro/requests/{rid}/status"
    assert sub["response_url"] == f"{fal.base_url}/fal-ai/flux-2-pro/requests/{rid}"
    assert httpx.get(sub["response_url"], headers=FAL_AUTH).status_code == 400  # not done yet
    states = [s["status"] for s in fal_wait(sub["status_url"])]
    assert states == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    result = httpx.get(sub["response_url"], headers=FAL_AUTH).json()
    assert len(result["images"]) == 2 and "seed" in result
    img = result["images"][0]
    assert (img["width"], img["height"], img["content_type"]) == (1600, 900, "image/png")
    f = httpx.get(img["url"])
    assert f.headers["x-fake-requested-size"] == "1600x900"
    assert png_size(f.content) == (1024, 576)  # capped at 1024 per side
    again = httpx.get(result["images"][1]["url"]).content
    assert again != f.content  # distinct images, deterministic colours
    assert [r.kind for r in fal.requests][:2] == ["submit", "submit"]
    assert fal.requests_of("submit")[1].body["num_images"] == 2


def test_fal_video_uses_owner_app_urls_and_serves_mp4(fal):
    model = "fal-ai/kling-video/v2.6/pro/text-to-video"
    sub = httpx.post(
        f"{fal.base_url}/{model}",
        headers=FAL_AUTH,
        json={"prompt": "waves", "duration": "5", "aspect_ratio": "9:16"},
    ).json()
    rid = sub["request_id"]
    assert sub["status_url"] == f"{fal.base_url}/fal-ai/kling-video/requests/{rid}/status"
    full = httpx.get(f"{fal.base_url}/{model}/requests/{rid}/status", headers=FAL_AUTH)
    assert full.status_code == 404  # real fal: only owner/app in status/result URLs
    assert fal_wait(sub["status_url"])[-1]["status"] == "COMPLETED"
    video = httpx.get(sub["response_url"], headers=FAL_AUTH).json()["video"]
    data = httpx.get(video["url"]).content
    assert data[4:8] == b"ftyp" and b"moov" in data and b"mdat" in data
    assert video["file_size"] == len(data) and video["content_type"] == "video/mp4"


def test_fal_scripted_429_then_ok(fal):
    fal.script("429")
    r = httpx.post(f"{fal.base_url}/fal-ai/flux-2-pro", headers=FAL_AUTH, json={"prompt": "a"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert (
        httpx.post(f"{fal.base_url}/fal-ai/flux-2-pro", headers=FAL_AUTH, json={"prompt": "a"}).status_code
        == 200
    )


def test_fal_content_policy_surfaces_at_result(fal):
    sub = httpx.post(
        f"{fal.base_url}/fal-ai/flux-2-pro", headers=FAL_AUTH, json={"prompt": "bad [[fault:content_policy]]"}
    ).json()
    final = fal_wait(sub["status_url"])[-1]
    assert final["status"] == "COMPLETED" and final["error_type"] == "content_policy_violation"
    r = httpx.get(sub["response_url"], headers=FAL_AUTH)
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "content_policy_violation"


def test_fal_job_failed_and_never_finishes(fal):
    fal.script("job_failed")
    sub = httpx.post(f"{fal.base_url}/fal-ai/flux-2-pro", headers=FAL_AUTH, json={"prompt": "a"}).json()
    fal_wait(sub["status_url"])
    r = httpx.get(sub["response_url"], headers=FAL_AUTH)
    assert r.status_code == 503 and r.headers["x-fal-error-type"] == "runner_disconnected"
    sub = httpx.post(
        f"{fal.base_url}/fal-ai/flux-2-pro", headers=FAL_AUTH, json={"prompt": "[[fault:never_finishes]]"}
    ).json()
    assert fal_wait(sub["status_url"], max_polls=6)[-1]["status"] == "IN_PROGRESS"


def test_fal_slow_request_and_clean_shutdown():
    server = FakeFal(slow_seconds=2.0).start()
    port = int(server.base_url.rsplit(":", 1)[1])
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/fal-ai/flux-2-pro", json={"prompt": "[[fault:slow]]"}, timeout=0.2)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 6
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


# --------------------------------------------------------------- OpenAI images
OAI_AUTH = {"Authorization": "Bearer sk-test"}


def test_openai_gpt_image_b64_happy_path(oai):
    r = httpx.post(
        f"{oai.base_url}/v1/images/generations",
        headers=OAI_AUTH,
        json={
            "model": "gpt-image-1",
            "prompt": "a lighthouse",
            "n": 2,
            "size": "1536x1024",
            "quality": "low",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["created"], int) and len(body["data"]) == 2
    assert png_size(base64.b64decode(body["data"][0]["b64_json"])) == (1024, 683)
    assert body["usage"]["output_tokens"] == 2 * 408 and body["size"] == "1536x1024"
    assert r.headers["x-fake-requested-size"] == "1536x1024"


def test_openai_dalle3_url_and_edits_multipart(oai):
    r = httpx.post(
        f"{oai.base_url}/v1/images/generations",
        headers=OAI_AUTH,
        json={"model": "dall-e-3", "prompt": "owl", "response_format": "url"},
    ).json()
    assert "revised_prompt" in r["data"][0]
    assert png_size(httpx.get(r["data"][0]["url"]).content) == (1024, 1024)
    files = [
        ("image[]", ("a.png", tiny_png(), "image/png")),
        ("image[]", ("b.png", tiny_png((1, 2, 3), (16, 4)), "image/png")),
    ]
    e = httpx.post(
        f"{oai.base_url}/v1/images/edits",
        headers=OAI_AUTH,
        files=files,
        data={"model": "gpt-image-1", "prompt": "merge them", "size": "1024x1024"},
    )
    assert e.status_code == 200, e.text
    assert len(e.json()["data"]) == 1 and e.json()["usage"]["input_tokens_details"]["image_tokens"] > 0
    logged = oai.requests_of("edit")[-1]
    assert [f["width"] for f in logged.body["files"]] == [8, 16]
    assert logged.body["fields"]["prompt"] == "merge them"
    no_img = httpx.post(
        f"{oai.base_url}/v1/images/edits",
        headers=OAI_AUTH,
        data={"model": "gpt-image-1", "prompt": "x"},
        files={"other": ("x", b"1")},
    )
    assert no_img.status_code == 400 and no_img.json()["error"]["param"] == "image"


def test_openai_images_faults(oai):
    r = httpx.post(
        f"{oai.base_url}/v1/images/generations",
        headers=OAI_AUTH,
        json={"model": "gpt-image-1", "prompt": "nope [[fault:content_policy]]"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_policy_violation"
    r = httpx.post(
        f"{oai.base_url}/v1/images/generations",
        headers=OAI_AUTH,
        json={"model": "gpt-image-1", "prompt": "three [[fault:partial]]", "n": 3},
    )
    assert len(r.json()["data"]) == 2
    oai.script("500")
    r = httpx.post(
        f"{oai.base_url}/v1/images/generations",
        headers=OAI_AUTH,
        json={"model": "gpt-image-1", "prompt": "x"},
    )
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert httpx.post(f"{oai.base_url}/v1/images/generations", json={"prompt": "x"}).status_code == 401


def test_xai_flavor_returns_jpeg_urls():
    with FakeOpenAIImages(flavor="xai") as xai:
        r = httpx.post(
            f"{xai.base_url}/v1/images/generations", json={"model": "grok-2-image", "prompt": "cat", "n": 2}
        ).json()
        assert len(r["data"]) == 2 and r["data"][0]["revised_prompt"]
        f = httpx.get(r["data"][0]["url"])
        assert f.headers["content-type"] == "image/jpeg" and f.content[:2] == b"\xff\xd8"


# ---------------------------------------------------------------- OpenAI video
def sora_wait(sora, vid: str, max_polls: int = 10) -> list[dict]:
    seen = []
    for _ in range(max_polls):
        seen.append(httpx.get(f"{sora.base_url}/v1/videos/{vid}", headers=OAI_AUTH).json())
        if seen[-1]["status"] in ("completed", "failed"):
            break
    return seen


def test_sora_happy_path_with_input_reference(sora):
    r = httpx.post(
        f"{sora.base_url}/v1/videos",
        headers=OAI_AUTH,
        data={"model": "sora-2", "prompt": "a drone shot", "seconds": "8", "size": "1280x720"},
        files={"input_reference": ("ref.png", tiny_png(size=(32, 18)), "image/png")},
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["object"] == "video" and job["status"] == "queued" and job["id"].startswith("video_")
    assert sora.requests_of("create")[-1].meta["input_reference"]["width"] == 32
    early = httpx.get(f"{sora.base_url}/v1/videos/{job['id']}/content", headers=OAI_AUTH)
    assert early.status_code == 404
    seen = sora_wait(sora, job["id"])
    assert [s["status"] for s in seen] == ["queued", "in_progress", "completed"]
    assert seen[-1]["progress"] == 100 and seen[-1]["seconds"] == "8" and seen[-1]["error"] is None
    mp4 = httpx.get(f"{sora.base_url}/v1/videos/{job['id']}/content", headers=OAI_AUTH)
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"


def test_sora_faults(sora):
    job = httpx.post(
        f"{sora.base_url}/v1/videos", headers=OAI_AUTH, json={"prompt": "x [[fault:job_failed]]"}
    ).json()
    last = sora_wait(sora, job["id"])[-1]
    assert last["status"] == "failed" and last["error"]["code"] and last["error"]["message"]
    sora.script("429")
    r = httpx.post(f"{sora.base_url}/v1/videos", headers=OAI_AUTH, json={"prompt": "y"})
    assert r.status_code == 429 and "retry-after" in r.headers
    bad = httpx.post(f"{sora.base_url}/v1/videos", headers=OAI_AUTH, json={"prompt": "y", "seconds": "5"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seconds"


# ---------------------------------------------------------------------- Gemini
def gemini_body(prompt: str, **img_cfg) -> dict:
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": prompt},
                    {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(tiny_png()).decode()}},
                ],
            }
        ],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": img_cfg},
    }


def test_gemini_image_happy_path(gemini):
    url = f"{gemini.base_url}/v1beta/models/gemini-2.5-flash-image:generateContent"
    r = httpx.post(url, headers={"x-goog-api-key": "g-key"}, json=gemini_body("a kite", aspectRatio="16:9"))
    assert r.status_code == 200, r.text
    body = r.json()
    parts = body["candidates"][0]["content"]["parts"]
    assert body["candidates"][0]["finishReason"] == "STOP" and "text" in parts[0]
    inline = parts[1]["inlineData"]
    assert inline["mimeType"] == "image/png"
    assert png_size(base64.b64decode(inline["data"])) == (1024, 585)  # 1344x768 capped
    assert r.headers["x-fake-requested-size"] == "1344x768"
    assert body["usageMetadata"]["candidatesTokensDetails"][-1] == {"modality": "IMAGE", "tokenCount": 1290}
    assert gemini.requests[-1].meta["input_images"][0]["width"] == 8
    pro = httpx.post(
        f"{gemini.base_url}/v1beta/models/gemini-3-pro-image-preview:generateContent",
        headers={"x-goog-api-key": "g-key"},
        json=gemini_body("a kite", aspectRatio="1:1", imageSize="2K"),
    )
    assert pro.headers["x-fake-requested-size"] == "2048x2048"


def test_gemini_faults(gemini):
    url = f"{gemini.base_url}/v1beta/models/gemini-2.5-flash-image:generateContent"
    hdr = {"x-goog-api-key": "g-key"}
    body = httpx.post(url, headers=hdr, json=gemini_body("[[fault:content_policy]]")).json()
    cand = body["candidates"][0]
    assert cand["finishReason"] == "IMAGE_SAFETY" and "content" not in cand
    body = httpx.post(url, headers=hdr, json=gemini_body("[[fault:no_image]]")).json()
    assert all("inlineData" not in p for p in body["candidates"][0]["content"]["parts"])
    gemini.script("500")
    r = httpx.post(url, headers=hdr, json=gemini_body("x"))
    assert r.status_code == 500 and r.json()["error"]["status"] == "INTERNAL"
    assert httpx.post(url, json=gemini_body("x")).status_code == 403
    assert httpx.post(url, headers={"x-goog-api-key": "wrong"}, json=gemini_body("x")).status_code == 400
