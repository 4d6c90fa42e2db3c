"""Image jobs on a real Celery worker: kickoff in well under a second, charged exactly once on the
first completion read (a hundred concurrent polls included), failed jobs free, polls coalesced,
Idempotency-Key replays, and only Nano Banana with n = 1 accepted."""

import asyncio
import base64
import io
import re
import time
from decimal import Decimal

import httpx
import pytest
from PIL import Image

from billing import ledger
from billing.models import Hold, LedgerEntry
from media_jobs.models import MediaJob

from ..conftest import balance_of, make_user, usage_rows

NANO, NANO_2 = Decimal("0.0312"), Decimal("0.0500")


@pytest.fixture
def jane(committed):
    # Jane: $5 and a generous rate limit (she polls a lot).
    return make_user("jane", "5", rpm=2000)


def headers(user, **extra):
    return {"X-API-Key": user.raw_key, **extra}


def kickoff(api_server, user, body, **extra):
    return httpx.post(
        f"{api_server}/v1/llm/images/jobs", headers=headers(user, **extra), json=body, timeout=10
    )


def wait_terminal(job_id: str, timeout: float = 20.0) -> MediaJob:
    """Watch the row (the truth) rather than the API, whose polls are coalesced."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = MediaJob.objects.get(pk=job_id)
        if job.is_terminal:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status}")


def poll(api_server, user, job_id):
    return httpx.get(f"{api_server}/v1/llm/images/jobs/{job_id}", headers=headers(user), timeout=10)


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def test_kickoff_is_fast_and_the_first_completion_read_charges_once(
    api_server, celery_worker_proc, jane, vendors
):
    started = time.perf_counter()
    resp = kickoff(
        api_server, jane, {"model": "nano-banana-pro", "prompt": "a cozy cabin at sunrise", "n": 1}
    )
    elapsed = time.perf_counter() - started

    assert resp.status_code == 202, resp.text
    data = resp.json()["data"]
    assert re.fullmatch(r"img_[0-9a-f]{20}", data["job_id"]) and data["status"] == "pending"
    assert data["estimated_cost_usd"] == 0.1072 and elapsed < 1.0
    job = wait_terminal(data["job_id"])
    assert job.status == "completed" and job.charged_at is None
    assert balance_of(jane) == Decimal("5")  # completed but unread: only held
    assert Hold.objects.get(pk=job.hold_id).status == Hold.OPEN

    done = poll(api_server, jane, data["job_id"]).json()["data"]
    assert done["status"] == "completed"
    image = Image.open(io.BytesIO(base64.b64decode(done["image"]["b64_json"])))
    assert image.format == "PNG" and done["image"]["mime_type"] == "image/png"
    assert httpx.get(done["image"]["url"]).content == base64.b64decode(done["image"]["b64_json"])
    assert done["cost_usd"] == 0.1072
    assert Decimal(str(done["balance_usd"])) == Decimal("5") - Decimal("0.1072") == balance_of(jane)
    again = poll(api_server, jane, data["job_id"]).json()["data"]
    assert again["cost_usd"] == 0.1072
    assert LedgerEntry.objects.filter(account=jane.account, kind="charge").count() == 1
    [row] = usage_rows(jane)
    assert (row.endpoint, row.images, row.cost_usd) == ("image_job", 1, Decimal("0.1072"))
    books_clean(jane)


def test_a_hundred_concurrent_polls_of_a_completion_charge_once(
    api_server, celery_worker_proc, jane, vendors
):
    job_id = kickoff(api_server, jane, {"model": "nano-banana", "prompt": "many eyes"}).json()["data"][
        "job_id"
    ]
    wait_terminal(job_id)

    async def hammer():
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
            return await asyncio.gather(
                *(
                    http.get(f"{api_server}/v1/llm/images/jobs/{job_id}", headers=headers(jane))
                    for _ in range(100)
                )
            )

    replies = asyncio.run(hammer())
    assert {r.status_code for r in replies} == {200}
    assert {r.json()["data"]["cost_usd"] for r in replies} == {float(NANO)}
    assert sum(r.headers.get("x-gpuniq-coalesced") == "true" for r in replies) >= 1
    assert LedgerEntry.objects.filter(account=jane.account, kind="charge").count() == 1
    assert balance_of(jane) == Decimal("5") - NANO
    assert len(usage_rows(jane)) == 1
    books_clean(jane)


def test_polls_within_the_window_are_coalesced(api_server, celery_worker_proc, jane, vendors):
    job_id = kickoff(api_server, jane, {"model": "nano-banana", "prompt": "twice"}).json()["data"]["job_id"]
    wait_terminal(job_id)
    first, second = poll(api_server, jane, job_id), poll(api_server, jane, job_id)
    assert "x-gpuniq-coalesced" not in first.headers and second.headers["x-gpuniq-coalesced"] == "true"
    assert first.json()["data"]["image"]["b64_json"] == second.json()["data"]["image"]["b64_json"]


def test_a_failed_job_costs_nothing_and_releases_its_hold(api_server, celery_worker_proc, jane, vendors):
    job_id = kickoff(
        api_server, jane, {"model": "nano-banana-2", "prompt": "no [[fault:content_policy]]"}
    ).json()["data"]["job_id"]
    job = wait_terminal(job_id)

    failed = poll(api_server, jane, job_id).json()["data"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "content_policy_violation"
    assert "image" not in failed and "cost_usd" not in failed
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED
    assert balance_of(jane) == Decimal("5")
    assert [(r.endpoint, r.status, r.cost_usd) for r in usage_rows(jane)] == [("image_job", "error", 0)]
    books_clean(jane)


def test_the_job_falls_back_across_routes_at_a_stable_price(api_server, celery_worker_proc, jane, vendors):
    vendors["gemini_images"].script("500")
    job_id = kickoff(
        api_server,
        jane,
        {"model": "nano-banana-2", "prompt": "a lantern", "size": "1280x720", "output_format": "webp"},
    ).json()["data"]["job_id"]
    wait_terminal(job_id)

    done = poll(api_server, jane, job_id).json()["data"]
    assert done["status"] == "completed" and done["cost_usd"] == float(NANO_2)
    assert done["image"]["mime_type"] == "image/webp"
    [submit] = vendors["fal"].requests_of("submit")
    assert submit.path == "/fal-ai/nano-banana-2"
    assert (submit.body["aspect_ratio"], submit.body["resolution"]) == ("16:9", "1K")
    assert "route" not in done and "fal" not in str({k: v for k, v in done.items() if k != "image"})
    assert MediaJob.objects.get(pk=job_id).route == "fal:fal-ai/nano-banana-2"  # operators only
    books_clean(jane)


def test_only_nano_banana_with_n_1_is_accepted(api_server, jane, vendors):
    wrong_n = kickoff(api_server, jane, {"model": "nano-banana", "prompt": "x", "n": 2})
    assert wrong_n.status_code == 400 and wrong_n.json()["error"]["meta"]["field"] == "n"
    wrong_model = kickoff(api_server, jane, {"model": "flux-2-pro", "prompt": "x"})
    assert wrong_model.status_code == 400 and wrong_model.json()["error"]["meta"]["field"] == "model"
    assert not MediaJob.objects.filter(user_id=jane.pk).exists()
    assert not Hold.objects.filter(account=jane.account).exists()


def test_same_idempotency_key_gives_the_same_job(api_server, celery_worker_proc, jane, vendors):
    body = {"model": "nano-banana", "prompt": "only once"}
    first = kickoff(api_server, jane, body, **{"Idempotency-Key": "img-42"}).json()["data"]["job_id"]
    second = kickoff(api_server, jane, body, **{"Idempotency-Key": "img-42"}).json()["data"]["job_id"]
    assert first == second
    other = kickoff(api_server, jane, {**body, "prompt": "changed"}, **{"Idempotency-Key": "img-42"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    wait_terminal(first)
    assert MediaJob.objects.filter(user_id=jane.pk).count() == 1
    assert Hold.objects.filter(account=jane.account).count() == 1
    poll(api_server, jane, first)
    books_clean(jane)


def test_another_users_job_is_a_404(api_server, celery_worker_proc, jane, vendors):
    kate = make_user("kate", "1")
    job_id = kickoff(api_server, jane, {"model": "nano-banana", "prompt": "mine"}).json()["data"]["job_id"]
    wait_terminal(job_id)
    assert poll(api_server, kate, job_id).status_code == 404
    as_video = httpx.get(f"{api_server}/v1/llm/videos/jobs/{job_id}", headers=headers(jane))
    assert as_video.status_code == 404 and as_video.json()["error"]["code"] == "job_not_found"
    assert poll(api_server, jane, job_id).status_code == 200
