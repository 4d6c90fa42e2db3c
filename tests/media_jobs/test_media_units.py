"""media_jobs in-process: every catalog slug has a route chain and resolves to its headline
price; price scaling; endpoint derivation for fal; the sandbox's real images and MP4s; signed
links; coalesced reads; and the 5-minute budget (shrunk here) ending a sync request cleanly."""

import asyncio
import base64
import io
import os
import struct
from decimal import Decimal

import pytest
from PIL import Image

from billing import ledger
from billing.models import Hold
from llm import upstreams
from llm.catalog import load_catalog_file, snapshot
from media_jobs import coalesce, routes, storage
from media_jobs.providers.base import ImageSpec, Route, VideoSpec
from media_jobs.providers.fal import image_endpoint, video_endpoint
from media_jobs.providers.sandbox import video_bytes
from media_jobs.video_options import resolve

from ..conftest import FAKE_KEY, balance_of, make_user, usage_rows

PNG = (
    "data:image/png;base64,"
    + base64.b64encode(
        (lambda b: (Image.new("RGB", (8, 8), (1, 2, 3)).save(b, "PNG"), b.getvalue())[1])(io.BytesIO())
    ).decode()
)


def media_models(kind: str) -> list[dict]:
    from django.conf import settings

    return [m for m in load_catalog_file(settings.GPUNIQ_CATALOG_PATH)["models"] if m["kind"] == kind]


@pytest.fixture
def media_env(monkeypatch, settings):
    """Point this process's media upstreams somewhere (or at the sandbox) for one test."""

    def apply(env: dict, *, sandbox: bool = False, **overrides):
        for name in [n for n in os.environ if n.startswith("UPSTREAM_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings.GPUNIQ_SANDBOX = sandbox
        for name, value in overrides.items():
            setattr(settings, name, value)
        upstreams.reset()
        routes.reset()

    yield apply
    upstreams.reset()
    routes.reset()


def principal_of(user):
    from accounts.keys import authenticate

    return authenticate(user.raw_key)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_every_media_slug_has_a_route_chain_with_adapters(kind, media_env):
    from llm.upstreams import Upstream

    media_env({})
    for model in media_models(kind):
        chain = [r for r in model["routes"] if r["provider"] in routes.PROVIDERS[kind]]
        assert chain and chain == model["routes"], model["slug"]
        for route in chain:
            fake = Upstream(family=routes.MEDIA_FAMILY[route["provider"]], base_url="https://x", api_key="k")
            assert hasattr(routes._build(route["provider"], kind, fake), "generate")


def test_every_video_slug_resolves_its_default_config_to_the_headline_price(
    catalog_loaded, django_db_blocker
):
    with django_db_blocker.unblock():
        models = snapshot().models
    for entry in media_models("video"):
        model = models[entry["slug"]]
        tasks = model.video_options["tasks"]
        body = {"prompt": "x"}
        if "t2v" not in tasks:
            body["image_url"] = PNG
        if "v2v" in tasks:
            body["video_url"] = "https://example.com/clip.mp4"
        video = resolve(model, body)
        assert video.cost(model) == model.per_video, entry["slug"]
        assert video.duration == model.video_options["default_duration"]
        assert video.task == ("v2v" if "v2v" in tasks else "t2v" if "t2v" in tasks else "i2v")


def test_prices_scale_linearly_from_the_headline(catalog_loaded, django_db_blocker):
    with django_db_blocker.unblock():
        models = snapshot().models

    def cost(slug, **body):
        return resolve(models[slug], {"prompt": "x", **body}).cost(models[slug])

    assert cost("kling-2-1", image_url=PNG, mode="master", duration=10) == Decimal("2.52")  # 0.405 x 2 x 28/9
    assert cost("kling-2-1", image_url=PNG, mode="standard") == Decimal("0.225")  # 0.405 x 5/9
    assert cost("kling-2-6", audio=True, duration=10) == Decimal("1.26")
    assert cost("grok-imagine-video", resolution="480p", duration=3) == Decimal(
        "0.10714286"
    )  # 0.3 x 3/6 x 5/7
    assert cost("sora-2-pro-official", resolution="720p", duration=4) == Decimal("0.168")
    assert cost("wan-2-6", duration=15) == Decimal("2.4")


def test_fal_endpoints_are_derived_per_task_mode_and_edit():
    assert image_endpoint("fal-ai/nano-banana-pro", edit=True) == "fal-ai/nano-banana-pro/edit"
    seedream = "fal-ai/bytedance/seedream/v4"
    assert image_endpoint(f"{seedream}/text-to-image", edit=True) == f"{seedream}/edit"
    assert (
        image_endpoint("fal-ai/flux-pro/kontext/max", edit=False)
        == "fal-ai/flux-pro/kontext/max/text-to-image"
    )
    assert image_endpoint("fal-ai/flux-pro/kontext", edit=True) == "fal-ai/flux-pro/kontext"
    spec = VideoSpec("kling-2-1", "x", 5, "16:9", "1080p", False, "master", "i2v")
    assert (
        video_endpoint("fal-ai/kling-video/v2.1/pro/image-to-video", spec)
        == "fal-ai/kling-video/v2.1/master/image-to-video"
    )
    spec = VideoSpec("veo-3-1-quality", "x", 8, "16:9", "1080p", False, None, "i2v")
    assert video_endpoint("fal-ai/veo3.1", spec) == "fal-ai/veo3.1/image-to-video"
    spec = VideoSpec("wan-2-5", "x", 5, "16:9", "720p", False, None, "i2v")
    assert (
        video_endpoint("fal-ai/wan-25-preview/text-to-video", spec) == "fal-ai/wan-25-preview/image-to-video"
    )


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict:
    found, offset, end = {}, start, len(data) if end is None else end
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found[kind.decode()] = (offset + 8, offset + size)
        offset += size
    return found


def test_the_sandbox_video_is_h264_that_browsers_play():
    import subprocess

    from media_jobs.providers.h264 import ffmpeg_exe

    data = video_bytes(VideoSpec("kling-2-6", "waves on a beach", 3, "9:16", None, False, None, "t2v"))
    top = _boxes(data)
    assert list(top)[:3] == ["ftyp", "moov", "free"] or list(top)[:2] == [
        "ftyp",
        "moov",
    ]  # moov first: plays at once
    assert b"avc1" in data[: top["moov"][1]] and b"avcC" in data[: top["moov"][1]]  # H.264, not MPEG-4 Part 2
    probe = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", "pipe:0", "-f", "null", "-"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert probe.returncode == 0 and not probe.stderr


def test_without_an_encoder_the_sandbox_video_falls_back_to_mjpeg_mp4(monkeypatch):
    from media_jobs.providers import h264

    monkeypatch.setattr(h264, "ffmpeg_exe", lambda: None)
    data = video_bytes(VideoSpec("kling-2-6", "waves on a beach", 3, "9:16", None, False, None, "t2v"))
    top = _boxes(data)
    assert list(top) == ["ftyp", "moov", "mdat"]
    stbl = data.index(b"stbl") - 4
    tables = _boxes(data, stbl + 8, stbl + struct.unpack(">I", data[stbl : stbl + 4])[0])
    sizes_at = tables["stsz"][0] + 12
    count = struct.unpack(">I", data[sizes_at - 4 : sizes_at])[0]
    sizes = struct.unpack(f">{count}I", data[sizes_at : sizes_at + 4 * count])
    offset = struct.unpack(">I", data[tables["stco"][0] + 8 : tables["stco"][0] + 12])[0]
    assert count == 12 and offset == top["mdat"][0]  # 3 s at 4 frames a second, frames start the mdat payload
    for size in sizes:
        frame = data[offset : offset + size]
        assert frame[:2] == b"\xff\xd8" and frame[-2:] == b"\xff\xd9"
        offset += size
    first = Image.open(io.BytesIO(data[top["mdat"][0] : top["mdat"][0] + sizes[0]]))
    assert first.size == (360, 640)


def test_sandbox_images_and_videos_end_to_end(committed, media_env, monkeypatch):
    from media_jobs import images, job_reads, jobs, worker

    media_env({}, sandbox=True)
    monkeypatch.setattr(jobs, "_enqueue", lambda job_id: None)  # run it here, not on the session's worker
    user = make_user("sandy", "5")
    principal = principal_of(user)
    outcome = asyncio.run(
        images.generate(
            principal,
            {"model": "flux-2-pro", "prompt": "a simulated harbour", "size": "640x480"},
            request_id="req_sandbox",
        )
    )
    image = Image.open(io.BytesIO(base64.b64decode(outcome.items[0]["b64_json"])))
    assert outcome.simulated and image.size == (640, 480) and outcome.cost == Decimal("0.060")
    assert len({image.getpixel((320, y)) for y in range(40, 480, 40)}) > 3  # a gradient, not a flat fill

    job = asyncio.run(
        jobs.start_video_job(
            principal, {"model": "kling-2-6", "prompt": "simulated surf"}, request_id="req_sandbox_v", key=""
        )
    )
    worker.execute(job.pk)
    data, _ = asyncio.run(job_reads.read(principal, job.pk, "video"))
    assert data["status"] == "completed" and data["simulated"] is True and data["cost_usd"] == 0.315
    path = storage.unsign(data["video"]["url"].rsplit("/", 1)[1])
    assert path.read_bytes()[4:8] == b"ftyp"
    assert balance_of(user) == Decimal("5") - Decimal("0.060") - Decimal("0.315")
    assert ledger.find_mismatches() == []


def test_the_budget_ends_a_sync_request_with_a_timeout_and_no_charge(committed, media_env, vendors):
    from gpuniq_site.errors import ApiError
    from media_jobs import images

    fal, fallback = vendors["fal"], vendors["fallback_images"]
    media_env(
        {
            "UPSTREAM_FAL_BASE_URL": fal.base_url,
            "UPSTREAM_FAL_API_KEY": FAKE_KEY,
            "UPSTREAM_FALLBACK_IMAGES_BASE_URL": fallback.base_url + "/v1",
            "UPSTREAM_FALLBACK_IMAGES_API_KEY": FAKE_KEY,
        },
        GPUNIQ_MEDIA_BUDGET_SECONDS=1,
        GPUNIQ_MEDIA_POLL_SECONDS=0.02,
    )
    user = make_user("tim", "1")
    with pytest.raises(ApiError) as raised:
        asyncio.run(
            images.generate(
                principal_of(user),
                {"model": "z-image", "prompt": "[[fault:never_finishes]]"},
                request_id="req_budget",
            )
        )
    assert raised.value.code == "upstream_timeout" and raised.value.status == 504
    assert fal.requests_of("cancel")  # fal was told to stop working on it
    assert not fallback.requests  # no new route is started on an exhausted budget
    assert balance_of(user) == Decimal("1")
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [(r.status, r.error_code) for r in usage_rows(user)] == [("error", "upstream_timeout")]


def test_a_budget_that_runs_out_between_two_polls_still_cancels_the_queued_job(vendors, settings):
    """The budget can end while fal's queue is polled (a status call that took long, or a loaded
    machine waking the poll late): the next call then fails at once, and fal is still told to
    stop working on a job nobody will read."""
    from media_jobs.providers.base import Deadline, UpstreamError
    from media_jobs.providers.fal_queue import FalQueue

    fal = vendors["fal"]
    settings.GPUNIQ_MEDIA_POLL_SECONDS = 0.02

    class EndsOnceSubmitted(Deadline):
        def remaining(self) -> float:
            return 0.0 if fal.requests_of("submit") else 60.0

    queue = FalQueue(upstreams.Upstream(family="fal", base_url=fal.base_url, api_key=FAKE_KEY))
    payload = {"prompt": "[[fault:never_finishes]]"}
    with pytest.raises(UpstreamError) as raised:
        asyncio.run(queue.run("fal-ai/z-image/turbo", payload, EndsOnceSubmitted(0.0)))
    assert raised.value.kind == "timeout"
    assert not fal.requests_of("status")  # the budget was gone before the first poll
    assert fal.requests_of("cancel")


def test_signed_links_refuse_tampering_and_paths_outside_the_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    relative = storage.save("generated", "image", b"\x89PNG\r\n\x1a\n...", "image/png")
    token = storage.sign(relative)
    assert storage.unsign(token).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(storage.BadLink):
        storage.unsign(token[:-2] + "xx")
    with pytest.raises(storage.BadLink):
        storage.unsign(storage.sign("../../etc/passwd"))
    assert storage.mime_of(relative) == "image/png"


async def test_coalesced_reads_share_one_computation_per_owner():
    calls = []

    async def compute():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"n": len(calls)}

    key = f"gpuniq:test:coalesce:{os.getpid()}:{id(calls)}"
    together = await asyncio.gather(*(coalesce.coalesced(key, 7, compute) for _ in range(20)))
    assert len(calls) == 1 and {v["n"] for v, _ in together} == {1}
    assert sum(shared for _, shared in together) == 19
    later, shared = await coalesce.coalesced(key, 7, compute)
    assert shared and later == {"n": 1} and len(calls) == 1  # within the window: the cached payload
    other, shared = await coalesce.coalesced(key, 8, compute)
    assert not shared and other == {"n": 2}  # another owner never reads it


def test_the_reaper_is_on_the_beat_schedule():
    from gpuniq_site.celery import app

    assert app.conf.beat_schedule["reap-media-jobs"]["task"] == "media_jobs.reap_media_jobs"
    from media_jobs.tasks import reap_media_jobs, run_media_job

    assert (
        run_media_job.name == "media_jobs.run_media_job"
        and reap_media_jobs.name == "media_jobs.reap_media_jobs"
    )


def test_route_identifiers_are_redacted_from_vendor_messages():
    from media_jobs.chain import user_error
    from media_jobs.providers.base import UpstreamError

    error = UpstreamError("server", "fal runner for fal-ai/flux-2-pro crashed")
    api = user_error(error, Route("fal", "fal-ai/flux-2-pro"), "flux-2-pro", "image", attempts=2)
    assert api.code == "all_routes_failed" and "fal" not in api.message.replace("flux-2-pro", "")
    assert isinstance(ImageSpec("x", "y").deadline.remaining(), float)


def _completed_image_job(user, *, hold_released: bool, api_key=None):
    from django.utils import timezone

    from media_jobs.models import MediaJob, new_job_id

    job_id = new_job_id("image")
    hold = ledger.hold(account_id=user.account.pk, amount="0.0312", idempotency_key=f"image_job:{job_id}")
    if hold_released:
        ledger.release(hold_id=hold.id, reason="stale hold released")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    path = storage.save("generated", "image", buf.getvalue(), "image/png")
    return MediaJob.objects.create(
        id=job_id,
        kind="image",
        user_id=user.pk,
        api_key=api_key,
        model="nano-banana",
        request={"prompt": "x"},
        hold_id=hold.id,
        request_id="req_late",
        estimated_cost_usd=Decimal("0.0312"),
        status="completed",
        result={"path": path, "mime_type": "image/png"},
        finished_at=timezone.now(),
    )


def test_a_completion_whose_hold_was_closed_is_charged_once_if_covered_and_else_never_delivered(committed):
    from media_jobs import job_reads

    lara, otto = make_user("lara", "1"), make_user("otto", "0.04")
    late = _completed_image_job(lara, hold_released=True)
    assert job_reads._load(lara.pk, late.pk, "image")["cost_usd"] == 0.0312
    assert job_reads._load(lara.pk, late.pk, "image")["cost_usd"] == 0.0312
    assert balance_of(lara) == Decimal("0.9688") and len(usage_rows(lara)) == 1

    swept = _completed_image_job(otto, hold_released=True)
    ledger.post(
        account_id=otto.account.pk, amount="-0.035", kind="adjustment", idempotency_key=f"adj:{otto.pk}"
    )
    read = job_reads._load(otto.pk, swept.pk, "image")  # no longer covered: withheld, never delivered free
    assert read["status"] == "failed" and read["error"]["code"] == "insufficient_balance"
    assert "image" not in read and "cost_usd" not in read
    assert balance_of(otto) == Decimal("0.005")
    assert ledger.find_mismatches() == []


def test_a_late_charge_stays_within_the_keys_monthly_cap(committed):
    from media_jobs import job_reads

    capped = make_user("capped", "1", monthly_spend_cap_usd=Decimal("0.05"))
    spent = ledger.hold(
        account_id=capped.account.pk,
        amount="0.03",
        idempotency_key=f"spent:{capped.pk}",
        api_key_id=capped.key.pk,
        cap=Decimal("0.05"),
    )
    ledger.settle(hold_id=spent.id, actual="0.03")  # $0.03 of the key's $0.05 spent this month
    late = _completed_image_job(capped, hold_released=True, api_key=capped.key)

    read = job_reads._load(capped.pk, late.pk, "image")  # $0.0312 more would pass the cap
    assert read["status"] == "failed" and "image" not in read and "cost_usd" not in read
    assert balance_of(capped) == Decimal("0.97")
    assert ledger.find_mismatches() == []
