"""A Celery worker never starves on its own database pool.

With DB_POOL_MAX equal to the worker's threads (docs/deploy.md used to recommend exactly that),
every job thread sat on a pooled connection while its job waited on the vendor, and the job's own
database calls waited 30 s for one and failed. Now the worker sizes its pool from its concurrency
and job threads give their connection back: 3 x more concurrent jobs than threads, against a slow
vendor, all complete on a real worker."""

import time
import uuid
from decimal import Decimal

import httpx
import pytest

from billing.models import Hold
from media_jobs.models import MediaJob

from ..conftest import FAKE_KEY, balance_of, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]
THREADS = 4
JOBS = 3 * THREADS
VENDOR_SECONDS = 1.5  # each fal job stays IN_QUEUE / IN_PROGRESS this long


@pytest.fixture
def slow_fal():
    from ..fakes.fal import FakeFal

    fal = FakeFal(api_key=FAKE_KEY, steps=2, delay=VENDOR_SECONDS).start()
    yield fal
    fal.stop()


@pytest.fixture
def starved_stack(catalog_loaded, slow_fal):
    """An app process and a worker with -c THREADS and DB_POOL_MAX=THREADS, on queues of their own."""
    from ..live import LiveServer, Worker

    tag = uuid.uuid4().hex[:8]
    env = {
        "UPSTREAM_FAL_BASE_URL": slow_fal.base_url,
        "UPSTREAM_FAL_API_KEY": FAKE_KEY,
        "DB_POOL_MAX": str(THREADS),
        "DB_POOL_TIMEOUT": "10",
        "GPUNIQ_MEDIA_POLL_SECONDS": "0.2",
        "GPUNIQ_MEDIA_HEARTBEAT_SECONDS": "0.3",
        "GPUNIQ_JOBS_QUEUE": f"pool-jobs-{tag}",
        "GPUNIQ_PERIODIC_QUEUE": f"pool-periodic-{tag}",
    }
    server = LiveServer(env=env).start()
    worker = Worker(env=env, concurrency=THREADS, name=f"pool{tag}").start()
    yield server, worker
    worker.stop()
    server.stop()


def test_three_times_more_jobs_than_threads_all_complete_without_waiting_for_a_connection(
    starved_stack, committed
):
    server, worker = starved_stack
    user = make_user("busy", "5", rpm=1000)
    started = time.monotonic()
    ids = []
    for i in range(JOBS):
        kicked = httpx.post(
            f"{server.url}/v1/llm/images/jobs",
            headers={"X-API-Key": user.raw_key},
            timeout=10,
            json={"model": "nano-banana", "prompt": f"tile {i}", "n": 1},
        )
        assert kicked.status_code == 202, kicked.text
        ids.append(kicked.json()["data"]["job_id"])

    jobs = _wait_all_terminal(ids, timeout=90)
    elapsed = time.monotonic() - started
    assert [j.status for j in jobs] == ["completed"] * JOBS, [j.error for j in jobs]
    log = worker.output()
    assert "couldn't get a connection" not in log and "PoolTimeout" not in log
    # three rounds of THREADS jobs, each mostly vendor time; starved, a round took 30 s or more
    assert elapsed < 3 * (VENDOR_SECONDS + 6), elapsed
    assert balance_of(user) == Decimal("5")  # completed but unread: held, not yet charged
    assert Hold.objects.filter(account=user.account, status=Hold.OPEN).count() == JOBS
    print(f"WORKER_POOL jobs={JOBS} threads={THREADS} db_pool_max={THREADS} all_completed_in={elapsed:.1f}s")


def _wait_all_terminal(ids: list[str], timeout: float) -> list[MediaJob]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = sorted(MediaJob.objects.filter(pk__in=ids), key=lambda j: ids.index(j.pk))
        if all(j.is_terminal for j in jobs):
            return jobs
        time.sleep(0.2)
    return jobs
