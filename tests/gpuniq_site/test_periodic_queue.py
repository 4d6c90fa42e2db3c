"""Reapers never wait behind jobs: beat's periodic tasks go to their own queue, consumed by their
own worker, laid out as compose.yaml and docs/deploy.md start them (a job worker on `-Q jobs`, a
periodic worker on `-Q periodic`, one beat). With hundreds of job tasks queued and the job worker
unable to take them, a stale hold is still released within the reaper's interval."""

import subprocess
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from billing import ledger
from billing.models import Hold

from ..conftest import balance_of, make_user
from ..live import ROOT, service_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]
FLOOD = 300
EVERY = 2.0  # seconds between release_stale_holds runs, for this test


@pytest.fixture
def split_stack(catalog_loaded, tmp_path):
    """A periodic worker (-Q periodic) and beat, on queues of their own; no job worker is free to
    take the jobs queue (all busy, or dead)."""
    from ..live import Worker

    tag = uuid.uuid4().hex[:8]
    queues = {"jobs": f"flood-jobs-{tag}", "periodic": f"flood-periodic-{tag}"}
    env = {
        "GPUNIQ_JOBS_QUEUE": queues["jobs"],
        "GPUNIQ_PERIODIC_QUEUE": queues["periodic"],
        "GPUNIQ_STALE_HOLDS_EVERY": str(EVERY),
        "GPUNIQ_REAP_CHAT_JOBS_EVERY": str(EVERY),
        "GPUNIQ_REAP_MEDIA_JOBS_EVERY": str(EVERY),
    }
    periodic = Worker(env=env, concurrency=1, name=f"periodic{tag}", args=("-Q", queues["periodic"])).start()
    beat_log = tmp_path / "beat.log"
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gpuniq_site",
            "beat",
            "--loglevel",
            "INFO",
            "-s",
            str(tmp_path / "schedule"),
        ],
        cwd=ROOT,
        env=service_env(env),
        stdout=beat_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    yield queues, periodic
    beat.terminate()
    beat.wait(15)
    periodic.stop()


def _flood(queue: str) -> None:
    """FLOOD job tasks on the jobs queue, as a burst of kickoffs would leave them."""
    from gpuniq_site.celery import app

    with app.producer_or_acquire() as producer:
        for i in range(FLOOD):
            app.send_task(
                "media_jobs.run_media_job", args=[f"img_flood{i:015d}"], queue=queue, producer=producer
            )


def _queued(queue: str) -> int:
    import redis

    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(queue)


def test_a_stale_hold_is_released_within_its_interval_while_the_jobs_queue_is_flooded(split_stack, committed):
    queues, periodic = split_stack
    user = make_user("stale", "2")
    _flood(queues["jobs"])
    assert _queued(queues["jobs"]) == FLOOD
    hold = ledger.hold(account_id=user.account.pk, amount="1", idempotency_key=f"stale-{uuid.uuid4().hex}")
    # left open by a process that died long ago
    Hold.objects.filter(pk=hold.id).update(
        created_at=timezone.now() - timedelta(seconds=settings.GPUNIQ_HOLD_TIMEOUT_SECONDS + 60)
    )
    stale_since = time.monotonic()

    deadline = stale_since + 10 * EVERY + 10  # beat's first run, plus a loaded machine's slack
    while time.monotonic() < deadline and Hold.objects.get(pk=hold.id).status == Hold.OPEN:
        time.sleep(0.1)
    waited = time.monotonic() - stale_since

    assert Hold.objects.get(pk=hold.id).status == Hold.RELEASED, periodic.output()[-3000:]
    assert _queued(queues["jobs"]) == FLOOD  # not one job task was taken to get there
    assert "billing.release_stale_holds" in periodic.output()
    assert balance_of(user) == Decimal("2")
    print(f"PERIODIC_QUEUE flood={FLOOD} interval={EVERY}s stale_hold_released_after={waited:.1f}s")
