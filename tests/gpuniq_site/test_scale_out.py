"""Two app processes and two Celery workers sharing one PostgreSQL and Redis behave as one
service: a global rate limit, revocation seen everywhere, jobs polled anywhere, no double charge."""

from decimal import Decimal

import httpx
import pytest

from accounts.keys import revoke_key
from billing import ledger
from billing.models import Hold, LedgerEntry

from ..conftest import balance_of, make_user, service_extra_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture(scope="module")
def cluster(catalog_loaded, fake_vendors):
    from ..live import LiveServer, Worker

    env = service_extra_env(fake_vendors)
    servers = [LiveServer(env=env).start() for _ in range(2)]
    workers = [Worker(env=env, name=f"scale{i}").start() for i in range(2)]
    yield [s.url for s in servers]
    for proc in servers + workers:
        proc.stop()


def test_rate_limit_is_global_across_app_processes(cluster, committed):
    user = make_user("quota", "1", rpm=120)
    headers = {"X-API-Key": user.raw_key}
    statuses = [
        httpx.get(f"{cluster[i % 2]}/v1/llm/balance", headers=headers).status_code for i in range(130)
    ]
    assert statuses.count(200) == 120
    assert statuses.count(429) == 10
    assert statuses[:120] == [200] * 120


def test_a_key_revoked_through_one_process_is_refused_by_the_other(cluster, committed):
    user = make_user("revoked", "1")
    headers = {"Authorization": f"Bearer {user.raw_key}"}
    assert all(httpx.get(f"{url}/v1/openai/models", headers=headers).status_code == 200 for url in cluster)
    revoke_key(key=user.key)  # as the dashboard would, in a third process
    for url in cluster:
        refused = httpx.get(f"{url}/v1/openai/models", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"


def test_jobs_started_on_one_process_are_polled_on_the_other_and_charged_once(cluster, committed, vendors):
    user = make_user("jobs", "5")
    headers = {"X-API-Key": user.raw_key}
    ids = [
        httpx.post(
            f"{cluster[i % 2]}/v1/llm/chat/jobs",
            headers=headers,
            json={"messages": [{"role": "user", "content": f"job {i}"}]},
        ).json()["data"]["job_id"]
        for i in range(6)
    ]
    results = [
        httpx.get(
            f"{cluster[(i + 1) % 2]}/v1/llm/chat/jobs/{job_id}",
            params={"wait": 20},
            headers=headers,
            timeout=30,
        ).json()["data"]
        for i, job_id in enumerate(ids)
    ]
    assert [r["status"] for r in results] == ["completed"] * 6
    assert [r["content"] for r in results] == [f"Echo: job {i}" for i in range(6)]
    charges = LedgerEntry.objects.filter(account=user.account, kind="charge")
    assert charges.count() == 6
    assert balance_of(user) == Decimal("5") + sum(c.amount for c in charges)
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []
