"""A job's hold belongs to the job: the generic stale-hold sweep never releases it, a finished job
is charged from it when first read (however late), a completion nobody reads within the media link
lifetime is discarded (nothing delivered, nothing charged), and a read of a job past its budget
fails it on the spot and releases its hold — with no worker and no beat running."""

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from billing import ledger
from billing.models import Hold, LedgerEntry
from llm.models import ChatJob
from media_jobs import storage
from media_jobs.models import MediaAsset, MediaJob, new_job_id

from ..conftest import balance_of, make_user, usage_rows
from tests.media_jobs.test_video_jobs import wait_status


@pytest.fixture
def vera(committed):
    # Vera: $2, makes one expensive video and spends the rest elsewhere.
    return make_user("vera", "2")


def headers(user):
    return {"X-API-Key": user.raw_key}


def poll(api_server, user, kind, job_id):
    return httpx.get(f"{api_server}/v1/llm/{kind}/jobs/{job_id}", headers=headers(user), timeout=10)


def completed_video(api_server, user) -> MediaJob:
    """Kling 3.0, 15 s: the $1.512 video of issue 12 §4, finished by the worker, not yet read."""
    resp = httpx.post(
        f"{api_server}/v1/llm/videos/jobs",
        headers=headers(user),
        timeout=10,
        json={"model": "kling-3-0", "prompt": "a lighthouse in a storm", "duration": 15},
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["data"]["estimated_cost_usd"] == 1.512
    job = wait_status(resp.json()["data"]["job_id"])
    assert job.status == "completed" and job.charged_at is None
    return job


def age(model, pk, field: str, seconds: float) -> None:
    model.objects.filter(pk=pk).update(**{field: timezone.now() - timedelta(seconds=seconds)})


def spend_everything_else(user) -> None:
    ledger.post(
        account_id=user.account.pk,
        amount="-100",
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key=f"spent-elsewhere:{uuid.uuid4().hex}",
        reason="spent elsewhere",
    )


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def test_a_finished_video_keeps_its_hold_through_the_sweep_and_is_charged_when_read_late(
    api_server, celery_worker_proc, vera, vendors
):
    job = completed_video(api_server, vera)
    age(Hold, job.hold_id, "created_at", 3600)  # an hour later, nobody has read it yet

    ledger.release_stale_holds(older_than_seconds=settings.GPUNIQ_HOLD_TIMEOUT_SECONDS)
    assert Hold.objects.get(pk=job.hold_id).status == Hold.OPEN  # the job still owns its money
    spend_everything_else(vera)  # only what is not held can go
    assert balance_of(vera) == Decimal("1.512")

    done = poll(api_server, vera, "videos", job.pk).json()["data"]
    assert done["status"] == "completed" and done["video"]["url"]
    assert done["cost_usd"] == 1.512 and done["balance_usd"] == 0
    assert balance_of(vera) == Decimal("0")
    [charge] = LedgerEntry.objects.filter(account=vera.account, kind="charge")
    assert charge.amount == Decimal("-1.512") and charge.hold_id == job.hold_id
    [row] = usage_rows(vera)
    assert (row.endpoint, row.cost_usd, row.status) == ("video_job", Decimal("1.512"), "ok")
    books_clean(vera)


def test_a_completion_unread_past_the_link_lifetime_is_discarded_by_the_reaper(
    api_server, celery_worker_proc, vera, vendors
):
    from media_jobs import worker

    job = completed_video(api_server, vera)
    path = job.result["path"]
    assert storage.absolute(path).exists()
    age(MediaJob, job.pk, "finished_at", settings.GPUNIQ_MEDIA_URL_TTL_SECONDS - 60)
    assert worker.reap() == 0  # still collectable
    age(MediaJob, job.pk, "finished_at", settings.GPUNIQ_MEDIA_URL_TTL_SECONDS + 1)
    assert worker.reap() == 1

    gone = MediaJob.objects.get(pk=job.pk)
    assert gone.status == "failed" and gone.error["code"] == "job_expired" and gone.cost_usd is None
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED and balance_of(vera) == Decimal("2")
    assert not storage.absolute(path).exists() and not MediaAsset.objects.filter(job_id=job.pk).exists()
    read = poll(api_server, vera, "videos", job.pk).json()["data"]
    assert read["status"] == "failed" and read["error"]["code"] == "job_expired"
    assert "video" not in read and "cost_usd" not in read
    assert not LedgerEntry.objects.filter(account=vera.account, kind="charge").exists()
    [row] = usage_rows(vera)
    assert (row.status, row.error_code, row.cost_usd) == ("error", "job_expired", Decimal("0"))
    books_clean(vera)


def test_a_read_after_the_link_lifetime_discards_the_completion_without_any_reaper(
    api_server, celery_worker_proc, vera, vendors
):
    job = completed_video(api_server, vera)
    age(MediaJob, job.pk, "finished_at", settings.GPUNIQ_MEDIA_URL_TTL_SECONDS + 1)

    read = poll(api_server, vera, "videos", job.pk).json()["data"]
    assert read["status"] == "failed" and read["error"]["code"] == "job_expired" and "video" not in read
    assert balance_of(vera) == Decimal("2")
    books_clean(vera)


def _stranded_media_job(user, kind: str, status: str, *, minutes_old: float) -> MediaJob:
    """A job whose worker is gone (or never came): no process will ever touch it again."""
    job_id = new_job_id(kind)
    hold = ledger.hold(
        account_id=user.account.pk,
        amount="0.5",
        idempotency_key=f"{kind}_job:{job_id}",
        purpose=f"{kind}_job",
    )
    job = MediaJob.objects.create(
        id=job_id,
        kind=kind,
        user_id=user.pk,
        model="kling-2-6" if kind == "video" else "nano-banana",
        request={"prompt": "x"},
        config={"duration": 5, "task": "t2v"},
        hold_id=hold.id,
        request_id=f"req_{job_id}",
        estimated_cost_usd=Decimal("0.5"),
        status=status,
        started_at=timezone.now() if status == "running" else None,
        heartbeat_at=timezone.now() if status == "running" else None,
    )
    age(MediaJob, job.pk, "created_at", minutes_old * 60)
    return job


@pytest.mark.parametrize(
    "kind, status, path", [("video", "running", "videos"), ("image", "pending", "images")]
)
def test_a_read_of_a_media_job_past_its_budget_fails_it_and_releases_its_hold(
    api_server, vera, kind, status, path
):
    young = _stranded_media_job(vera, kind, status, minutes_old=1)
    assert (
        poll(api_server, vera, path, young.pk).json()["data"]["status"] == status
    )  # within budget: untouched

    job = _stranded_media_job(vera, kind, status, minutes_old=settings.GPUNIQ_MEDIA_BUDGET_SECONDS / 60 + 1)
    read = poll(api_server, vera, path, job.pk)
    assert read.status_code == 200
    data = read.json()["data"]
    assert data["status"] == "failed" and data["error"]["code"] == "upstream_timeout"
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED
    assert Hold.objects.get(pk=young.hold_id).status == Hold.OPEN
    assert balance_of(vera) == Decimal("2")
    from media_jobs import worker

    assert worker.time_out(young)  # leave no stranded job for other tests' reapers


def test_a_read_of_a_chat_job_past_its_budget_fails_it_and_releases_its_hold(api_server, vera):
    from llm import chat_worker

    hold = ledger.hold(
        account_id=vera.account.pk,
        amount="0.7",
        idempotency_key=f"chat_job:{uuid.uuid4().hex}",
        purpose="chat_job",
    )
    job = ChatJob.objects.create(
        user_id=vera.pk,
        request={"model": "gpt-4o", "messages": []},
        hold_id=hold.id,
        request_id="req_stranded",
        status=ChatJob.RUNNING,
    )
    age(ChatJob, job.pk, "created_at", chat_worker.JOB_BUDGET_SECONDS + 120)

    data = httpx.get(f"{api_server}/v1/llm/chat/jobs/{job.pk}", headers=headers(vera), timeout=10).json()[
        "data"
    ]
    assert data["status"] == "failed" and data["error"]["code"] == "upstream_timeout"
    assert Hold.objects.get(pk=hold.id).status == Hold.RELEASED and balance_of(vera) == Decimal("2")
    books_clean(vera)


def test_the_generic_sweep_skips_job_holds_and_the_reapers_release_only_holds_without_a_job(vera):
    from llm import chat_worker
    from media_jobs import worker

    def old_hold(purpose: str, key: str) -> int:
        ref = ledger.hold(account_id=vera.account.pk, amount="0.1", idempotency_key=key, purpose=purpose)
        age(Hold, ref.id, "created_at", settings.GPUNIQ_HOLD_TIMEOUT_SECONDS + 60)
        return ref.id

    tag = uuid.uuid4().hex
    stream = old_hold("chat", f"chat:{tag}")
    owned_chat, orphan_chat = (
        old_hold("chat_job", f"chat_job:a{tag}"),
        old_hold("chat_job", f"chat_job:b{tag}"),
    )
    owned_video, orphan_video = (
        old_hold("video_job", f"video_job:a{tag}"),
        old_hold("video_job", f"video_job:b{tag}"),
    )
    chat_job = ChatJob.objects.create(
        user_id=vera.pk,
        request={"model": "gpt-4o", "messages": []},
        hold_id=owned_chat,
        request_id="req_owned",
        status=ChatJob.RUNNING,
    )
    video_job = MediaJob.objects.create(
        id=new_job_id("video"),
        kind="video",
        user_id=vera.pk,
        model="kling-2-6",
        request={"prompt": "x"},
        hold_id=owned_video,
        request_id="req_owned_video",
        estimated_cost_usd=Decimal("0.1"),
        status=MediaJob.COMPLETED,
        result={"path": "generated/none.mp4"},
        finished_at=timezone.now(),
    )

    ledger.release_stale_holds(older_than_seconds=settings.GPUNIQ_HOLD_TIMEOUT_SECONDS)
    status = lambda pk: Hold.objects.get(pk=pk).status  # noqa: E731
    assert status(stream) == Hold.RELEASED
    assert [status(pk) for pk in (owned_chat, orphan_chat, owned_video, orphan_video)] == [Hold.OPEN] * 4

    chat_worker.reap()
    worker.reap()
    assert (status(owned_chat), status(orphan_chat)) == (Hold.OPEN, Hold.RELEASED)
    assert (status(owned_video), status(orphan_video)) == (Hold.OPEN, Hold.RELEASED)
    assert chat_worker.expire(chat_job) and worker.discard(video_job)  # the jobs end: so do their holds
    assert (status(owned_chat), status(owned_video)) == (Hold.RELEASED, Hold.RELEASED)
    books_clean(vera)
