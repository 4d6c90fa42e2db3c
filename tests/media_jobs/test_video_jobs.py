"""Video jobs on a real Celery worker against the fal and OpenAI Videos fakes: the resolved config
and price at kickoff, the hold, one charge on the first completion read, image-to-video and
motion control, fallback across routes and vendors, failed jobs, per-field 400s before any hold,
Idempotency-Key replays, and a worker killed mid-job being reaped with its hold released."""

import base64
import io
import re
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.models import Hold, LedgerEntry
from media_jobs.models import MediaJob

from ..conftest import balance_of, make_user, usage_rows
from ..fakes.media_common import make_mp4


@pytest.fixture
def leo(committed):
    # Leo: $5, makes videos.
    return make_user("leo", "5")


def headers(user, **extra):
    return {"X-API-Key": user.raw_key, **extra}


def kickoff(api_server, user, body, **extra):
    return httpx.post(
        f"{api_server}/v1/llm/videos/jobs", headers=headers(user, **extra), json=body, timeout=10
    )


def poll(api_server, user, job_id):
    return httpx.get(f"{api_server}/v1/llm/videos/jobs/{job_id}", headers=headers(user), timeout=10)


def wait_status(job_id: str, statuses=("completed", "failed"), timeout: float = 30.0) -> MediaJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = MediaJob.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status}")


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def png_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (20, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_kling_job_resolves_its_config_holds_and_charges_on_the_first_completion_read(
    api_server, celery_worker_proc, leo, vendors
):
    started = time.perf_counter()
    resp = kickoff(
        api_server,
        leo,
        {
            "model": "kling-2-6",
            "prompt": "A small black cat turns toward the camera",
            "duration": 5,
            "audio": False,
            "resolution": "1080p",
        },
    )
    elapsed = time.perf_counter() - started

    assert resp.status_code == 202, resp.text
    data = resp.json()["data"]
    assert re.fullmatch(r"vid_[0-9a-f]{20}", data["job_id"]) and elapsed < 1.0
    assert (data["status"], data["model"], data["estimated_cost_usd"]) == ("pending", "kling-2-6", 0.315)
    assert data["config"] == {
        "resolution": "1080p",
        "audio": False,
        "duration": 5,
        "task": "t2v",
        "mode": None,
        "aspect_ratio": "16:9",
    }
    assert Hold.objects.get(account=leo.account).amount == Decimal("0.315")
    job = wait_status(data["job_id"])
    assert job.status == "completed" and balance_of(leo) == Decimal("5")

    done = poll(api_server, leo, data["job_id"]).json()["data"]
    assert done["status"] == "completed" and done["config"] == data["config"]
    video = httpx.get(done["video"]["url"])
    assert (
        video.status_code == 200
        and video.headers["content-type"] == "video/mp4"
        and video.content[4:8] == b"ftyp"
    )
    seek = httpx.get(done["video"]["url"], headers={"Range": "bytes=4-7"})  # players seek with ranges
    assert (seek.status_code, seek.content) == (206, b"ftyp")
    assert seek.headers["content-range"] == f"bytes 4-7/{len(video.content)}"
    assert done["cost_usd"] == 0.315 and Decimal(str(done["balance_usd"])) == Decimal("4.685") == balance_of(
        leo
    )
    poll(api_server, leo, data["job_id"])
    assert LedgerEntry.objects.filter(account=leo.account, kind="charge").count() == 1
    [row] = usage_rows(leo)
    assert (row.endpoint, row.video_seconds, row.cost_usd) == ("video_job", 5, Decimal("0.315"))
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.path == "/fal-ai/kling-video/v2.6/pro/text-to-video"
    assert {k: submit.body[k] for k in ("duration", "aspect_ratio", "resolution", "generate_audio")} == {
        "duration": "5",
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "generate_audio": False,
    }
    books_clean(leo)


def test_audio_duration_and_resolution_scale_the_price(api_server, celery_worker_proc, leo, vendors):
    resp = kickoff(
        api_server,
        leo,
        {
            "model": "kling-3-0",
            "prompt": "fireworks",
            "duration": 10,
            "audio": True,
            "resolution": "4k",
            "aspect_ratio": "9:16",
        },
    )
    data = resp.json()["data"]
    assert Decimal(str(data["estimated_cost_usd"])) == Decimal("0.504") * 2 * 2 * 2  # 10s/5s, audio, 4k
    assert data["config"]["resolution"] == "4k" and data["config"]["audio"] is True
    assert Hold.objects.get(account=leo.account).amount == Decimal("4.032")
    wait_status(data["job_id"])
    assert vendors["fal"].requests_of("submit")[0].body["generate_audio"] is True
    assert poll(api_server, leo, data["job_id"]).json()["data"]["cost_usd"] == 4.032
    books_clean(leo)


def test_image_to_video_uses_the_image_endpoint_with_the_image_inline(
    api_server, celery_worker_proc, leo, vendors
):
    job_id = kickoff(
        api_server,
        leo,
        {"model": "veo-3-1-fast", "prompt": "the photo comes alive", "image_url": png_uri(), "duration": 6},
    ).json()["data"]["job_id"]
    job = wait_status(job_id)

    assert job.status == "completed" and job.config["task"] == "i2v"
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.path == "/fal-ai/veo3.1/fast/image-to-video"
    assert submit.body["image_url"].startswith("data:image/png;base64,") and submit.body["duration"] == "6s"
    assert poll(api_server, leo, job_id).json()["data"]["cost_usd"] == pytest.approx(0.15)


def test_motion_control_takes_a_driving_video_and_a_frame(api_server, celery_worker_proc, leo, vendors):
    clip = "data:video/mp4;base64," + base64.b64encode(make_mp4(2.0, 320, 180, seed="dance")).decode()
    resp = kickoff(
        api_server,
        leo,
        {
            "model": "kling-2-6-motion-control",
            "prompt": "dance",
            "video_url": clip,
            "image_url": png_uri(),
            "resolution": "720p",
        },
    )
    data = resp.json()["data"]
    assert data["config"]["task"] == "v2v" and data["estimated_cost_usd"] == pytest.approx(0.504 * 0.625)
    wait_status(data["job_id"])
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.path == "/fal-ai/kling-video/v2.6/pro/motion-control"
    assert submit.body["video_url"].startswith("data:video/mp4;base64,") and "image_url" in submit.body
    assert "aspect_ratio" not in submit.body


def test_a_failing_route_falls_back_and_the_price_stays(api_server, celery_worker_proc, leo, vendors):
    vendors["fal"].script("500")
    job_id = kickoff(api_server, leo, {"model": "kling-o3-video", "prompt": "rain on a window"}).json()[
        "data"
    ]["job_id"]
    wait_status(job_id)

    done = poll(api_server, leo, job_id).json()["data"]
    assert done["status"] == "completed" and done["cost_usd"] == 0.15
    assert [r.path for r in vendors["fal"].requests_of("submit")] == [
        "/fal-ai/kling-video/o3/pro/text-to-video",
        "/fal-ai/kling-video/o3/standard/text-to-video",
    ]
    assert "o3/standard" not in str(done)
    books_clean(leo)


def test_sora_official_runs_on_openai_and_falls_back_to_fal(api_server, celery_worker_proc, leo, vendors):
    first = kickoff(
        api_server,
        leo,
        {"model": "sora-2-official", "prompt": "paper boats", "aspect_ratio": "9:16", "duration": 4},
    ).json()["data"]
    assert first["estimated_cost_usd"] == pytest.approx(0.24)
    assert wait_status(first["job_id"]).route == "openai_video:sora-2"
    create = vendors["openai_video"].requests_of("create")[0].body
    assert (create["model"], create["seconds"], create["size"]) == ("sora-2", "4", "720x1280")
    assert (
        httpx.get(poll(api_server, leo, first["job_id"]).json()["data"]["video"]["url"]).content[4:8]
        == b"ftyp"
    )

    vendors["openai_video"].script("job_failed", on="create")
    second = kickoff(api_server, leo, {"model": "sora-2-pro-official", "prompt": "origami"}).json()["data"]
    assert second["config"]["resolution"] == "1080p" and second["estimated_cost_usd"] == 0.56
    assert wait_status(second["job_id"]).route == "fal:fal-ai/sora-2/text-to-video/pro"
    assert poll(api_server, leo, second["job_id"]).json()["data"]["cost_usd"] == 0.56
    assert balance_of(leo) == Decimal("5") - Decimal("0.24") - Decimal("0.56")
    books_clean(leo)


def test_a_failed_job_costs_nothing(api_server, celery_worker_proc, leo, vendors):
    vendors["fal"].script("job_failed", on="submit")
    job_id = kickoff(api_server, leo, {"model": "hailuo-02", "prompt": "clouds"}).json()["data"]["job_id"]
    job = wait_status(job_id)

    failed = poll(api_server, leo, job_id).json()["data"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "upstream_error"
    assert "video" not in failed and "cost_usd" not in failed
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED and balance_of(leo) == Decimal("5")
    assert [(r.endpoint, r.status) for r in usage_rows(leo)] == [("video_job", "error")]
    books_clean(leo)


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        (
            {"model": "kling-2-6", "prompt": "x", "resolution": "4k"},
            400,
            "unsupported_parameter",
            "resolution",
        ),
        ({"model": "veo-3-1-fast", "prompt": "x", "audio": True}, 400, "unsupported_parameter", "audio"),
        ({"model": "kling-2-6", "prompt": "x", "mode": "master"}, 400, "unsupported_parameter", "mode"),
        (
            {"model": "kling-2-1", "prompt": "x", "image_url": "data:,", "mode": "turbo"},
            400,
            "unsupported_parameter",
            "mode",
        ),
        ({"model": "kling-2-6", "prompt": "x", "duration": 7}, 400, "unsupported_parameter", "duration"),
        (
            {"model": "veo-3-1-lite", "prompt": "x", "aspect_ratio": "1:1"},
            400,
            "unsupported_parameter",
            "aspect_ratio",
        ),
        (
            {"model": "kling-2-6-motion-control", "prompt": "x", "image_url": "data:,"},
            400,
            "invalid_parameter",
            "video_url",
        ),
        ({"model": "kling-2-1", "prompt": "x"}, 400, "invalid_parameter", "image_url"),
        (
            {"model": "kling-2-6", "prompt": "x", "video_url": "https://example.com/a.mp4"},
            400,
            "unsupported_parameter",
            "video_url",
        ),
        (
            {"model": "kling-2-6", "prompt": "x", "image_url": "http://example.com/a.png"},
            400,
            "invalid_url",
            "image_url",
        ),
        (
            {"model": "kling-2-6", "prompt": "x", "image_url": "https://10.0.0.5/a.png"},
            400,
            "invalid_url",
            "image_url",
        ),
        ({"model": "kling-2-6", "prompt": "x" * 4001}, 400, "invalid_parameter", "prompt"),
        ({"model": "kling-2-6", "prompt": "x", "audio": "yes"}, 400, "invalid_parameter", "audio"),
        ({"model": "nano-banana", "prompt": "x"}, 400, "wrong_model_kind", None),
    ],
)
def test_unsupported_combinations_are_400s_naming_the_field_before_any_hold(
    api_server, leo, body, status, code, field
):
    resp = kickoff(api_server, leo, body)
    assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    if field:
        assert resp.json()["error"]["meta"]["field"] == field
    assert not Hold.objects.filter(account=leo.account).exists()


def test_insufficient_balance_is_a_402_and_no_job(api_server, committed):
    mia = make_user("mia", "0.10")
    resp = kickoff(api_server, mia, {"model": "kling-2-6", "prompt": "x"})
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "insufficient_balance"
    assert not MediaJob.objects.filter(user_id=mia.pk).exists()


def test_retrying_a_kickoff_with_the_same_idempotency_key_gives_the_same_job(
    api_server, celery_worker_proc, leo, vendors
):
    body = {"model": "wan-2-2-fast", "prompt": "one job only"}
    ids = {
        kickoff(api_server, leo, body, **{"Idempotency-Key": "vid-7"}).json()["data"]["job_id"]
        for _ in range(3)
    }
    assert len(ids) == 1
    wait_status(ids.pop())
    assert MediaJob.objects.filter(user_id=leo.pk).count() == 1
    assert Hold.objects.filter(account=leo.account).count() == 1
    assert len(vendors["fal"].requests_of("submit")) == 1


def test_a_worker_killed_mid_job_is_reaped_and_its_hold_released(
    api_server, celery_worker_proc, leo, vendors
):
    from media_jobs import worker

    job_id = kickoff(
        api_server, leo, {"model": "seedance-2", "prompt": "slow [[fault:never_finishes]]"}
    ).json()["data"]["job_id"]
    job = wait_status(job_id, statuses=("running",))
    deadline = time.monotonic() + 10
    while not vendors["fal"].requests_of("status") and time.monotonic() < deadline:
        time.sleep(0.05)
    celery_worker_proc.kill()
    try:
        worker.reap()  # other tests' leftovers may be reaped too; this job is young and was beating
        assert MediaJob.objects.get(pk=job_id).status == "running"
        MediaJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(minutes=2))
        assert worker.reap() >= 1
        reaped = MediaJob.objects.get(pk=job_id)
        assert reaped.status == "failed" and reaped.error["code"] == "upstream_timeout"
        assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED and balance_of(leo) == Decimal("5")
        failed = poll(api_server, leo, job_id).json()["data"]
        assert failed["status"] == "failed" and "cost_usd" not in failed
        books_clean(leo)
    finally:
        celery_worker_proc.start()


def test_jobs_past_their_budget_are_reaped_even_if_never_started(leo):
    from media_jobs import worker
    from media_jobs.models import new_job_id

    hold = ledger.hold(
        account_id=leo.account.pk, amount="0.2", idempotency_key=f"video_job:{new_job_id('video')}"
    )
    job = MediaJob.objects.create(
        kind="video",
        user_id=leo.pk,
        model="kling-2-6",
        request={"prompt": "x"},
        config={"duration": 5, "task": "t2v"},
        hold_id=hold.id,
        request_id="req_budget",
        estimated_cost_usd=Decimal("0.2"),
    )
    MediaJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    assert worker.reap() >= 1
    assert MediaJob.objects.get(pk=job.pk).status == "failed"
    assert Hold.objects.get(pk=hold.id).status == Hold.RELEASED
    books_clean(leo)
