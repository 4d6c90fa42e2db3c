"""The docs' image and video snippets, verbatim but for the base URL, the key, shorter sleeps and the
indentation the reference text lost, run against the live server, the real worker and the media fakes
(requests, curl, the OpenAI SDK)."""

import base64
import contextlib
import io
import json
import subprocess
from decimal import Decimal

import pytest
from PIL import Image

from billing import ledger
from billing.models import Hold

from ..conftest import balance_of, make_user

IMAGE_JOBS = """
import time, requests
BASE = "https://api.gpuniq.com/v1/llm"
HEADERS = {"X-API-Key": "gpuniq_your_key"}
# 1. Kickoff
start = requests.post(
f"{BASE}/images/jobs",
headers=HEADERS,
json={"model": "nano-banana-pro", "prompt": "a cozy cabin at sunrise", "n": 1},
).json()
job_id = start["data"]["job_id"]
# 2. Poll — 5-minute budget covers the slowest Pro / 4K runs
deadline = time.time() + 300
while time.time() < deadline:
    time.sleep(2.5)
    r = requests.get(f"{BASE}/images/jobs/{job_id}", headers=HEADERS).json()
    d = r["data"]
    if d["status"] == "completed":
        image_b64 = d["image"]["b64_json"]
        print(f"Cost: ${d['cost_usd']}, balance: ${d['balance_usd']}")
        break
    if d["status"] == "failed":
        print("failed:", d.get("error"))
        break
"""

VIDEO_JOBS = """
import time, requests
BASE = "https://api.gpuniq.com/v1/llm"
HEADERS = {"X-API-Key": "gpuniq_your_key"}
# 1. Kickoff
start = requests.post(
f"{BASE}/videos/jobs",
headers=HEADERS,
json={
"model": "kling-2-6",
"prompt": "A small black cat slowly turns toward the camera at golden hour",
"duration": 5,
"audio": False, # opt-in, doubles price on Kling 2.6 / 3.0
"resolution": "1080p", # 720p | 1080p | 4k (where supported)
},
).json()
job_id = start["data"]["job_id"]
print(f"job: {job_id}, est cost: ${start['data']['estimated_cost_usd']}")
# 2. Poll — video models deliver in 30-90s; budget 5 minutes for the slowest variants
deadline = time.time() + 300
while time.time() < deadline:
    time.sleep(3)
    r = requests.get(f"{BASE}/videos/jobs/{job_id}", headers=HEADERS).json()
    d = r["data"]
    if d["status"] == "completed":
        print(f"video: {d['video']['url']}")
        print(f"cost: ${d['cost_usd']}, balance: ${d['balance_usd']}")
        break
    if d["status"] == "failed":
        print("failed:", d.get("error"))
        break
"""

NATIVE_EDIT = """
import base64, requests
with open("reference.jpg", "rb") as fh:
    ref = "data:image/jpeg;base64," + base64.b64encode(fh.read()).decode()
resp = requests.post(
"https://api.gpuniq.com/v1/llm/images/generations",
headers={"X-API-Key": "gpuniq_your_key"},
json={
"model": "nano-banana-pro",
"prompt": "Redraw the cabin in watercolor style",
"n": 1,
"size": "2048x2048",
"input_images": [ref],
},
).json()
print("cost:", resp["data"]["cost_usd"])
"""

SDK_IMAGES = """
from openai import OpenAI
client = OpenAI(
api_key="gpuniq_your_key",
base_url="https://api.gpuniq.com/v1/openai",
)
resp = client.images.generate(
model="nano-banana-pro",
prompt="A cozy mountain cabin at sunrise, cinematic lighting",
n=2,
size="1024x1024",
response_format="b64_json",
)
for i, img in enumerate(resp.data):
    with open(f"out_{i}.png", "wb") as f:
        import base64
        f.write(base64.b64decode(img.b64_json))
"""


@pytest.fixture
def nina(committed):
    # Nina: $5, follows the docs to the letter.
    return make_user("nina", "5")


def run_snippet(code: str, api_server: str, user, sleep: float = 0.3) -> str:
    code = (
        code.replace("https://api.gpuniq.com", api_server)
        .replace("gpuniq_your_key", user.raw_key)
        .replace("time.sleep(2.5)", f"time.sleep({sleep})")
        .replace("time.sleep(3)", f"time.sleep({sleep})")
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<docs snippet>", "exec"), {})
    return out.getvalue()


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def test_the_image_jobs_snippet(api_server, celery_worker_proc, nina, vendors):
    printed = run_snippet(IMAGE_JOBS, api_server, nina)
    assert printed.startswith("Cost: $0.1072, balance: $4.8928")
    assert balance_of(nina) == Decimal("4.8928")
    books_clean(nina)


def test_the_video_jobs_snippet(api_server, celery_worker_proc, nina, vendors):
    printed = run_snippet(VIDEO_JOBS, api_server, nina).splitlines()
    assert printed[0].startswith("job: vid_") and printed[0].endswith("est cost: $0.315")
    assert printed[1].startswith(f"video: {api_server}/v1/llm/media/")
    assert printed[2] == "cost: $0.315, balance: $4.685"
    books_clean(nina)


def test_the_native_reference_image_snippet(api_server, nina, vendors, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (40, 30), (150, 90, 40)).save(tmp_path / "reference.jpg", "JPEG")
    assert run_snippet(NATIVE_EDIT, api_server, nina) == "cost: 0.1072\n"
    sent = vendors["gemini_images"].requests[0]
    assert sent.meta["input_images"][0]["format"] == "JPEG"
    assert sent.body["generationConfig"]["imageConfig"]["imageSize"] == "2K"


def test_the_sdk_snippet_writes_two_pngs(api_server, nina, vendors, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_snippet(SDK_IMAGES, api_server, nina)
    assert [Image.open(tmp_path / f"out_{i}.png").format for i in range(2)] == ["PNG", "PNG"]


def test_the_curl_snippet(api_server, nina, vendors):
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{api_server}/v1/openai/images/generations",
            "-H",
            f"Authorization: Bearer {nina.raw_key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(
                {
                    "model": "grok-4-image",
                    "prompt": "Studio portrait of an astronaut in a pink desert",
                    "n": 1,
                    "size": "1024x1024",
                }
            ),
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    body = json.loads(done.stdout)
    assert Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))).format == "JPEG"
    assert balance_of(nina) == Decimal("5") - Decimal("0.0352")
