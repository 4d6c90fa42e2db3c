"""The operator's soak run (issue 13): 20,000 mixed requests at concurrency 100 over two app
processes, with upstream faults and one Celery worker restart half-way. Every answer is a
complete reply or a catalog code (no 5xx outside the catalog), no hold is left open, the ledger
adds up, and memory stays flat. Too long for every `make test`: run it with

    TEST_DATABASE_URL=... TEST_REDIS_URL=... \
        .venv/bin/python -m pytest tests/gpuniq_site/test_soak_mixed.py -m soak -s

(GPUNIQ_SOAK_REQUESTS sets the count); docs/reliability.md has the figures of the last run.
"""

import asyncio
import os
import random
import time
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum

from billing import ledger
from billing.models import Hold, LedgerEntry
from billing.money import usd
from gpuniq_site.errors import CATALOG

from ..conftest import balance_of, make_user, service_extra_env, usage_rows
from tests.llm.test_chat_mixed_load import FAULTS, MODELS, _one, _request, open_connections, rss_mb

pytestmark = [pytest.mark.soak, pytest.mark.postgres, pytest.mark.redis]
REQUESTS = int(os.environ.get("GPUNIQ_SOAK_REQUESTS", "20000"))
CONCURRENCY = 100
JOB_SHARE = 0.03


async def _job(client: httpx.AsyncClient, body: dict) -> str:
    """A chat job: kicked off, then read back (long-poll) until it ends."""
    r = await client.post("/v1/llm/chat/jobs", json={**body, "stream": False})
    if r.status_code != 202:
        return r.json()["error"]["code"]
    job_id = r.json()["data"]["job_id"]
    for _ in range(40):
        data = (await client.get(f"/v1/llm/chat/jobs/{job_id}", params={"wait": 15})).json()["data"]
        if data["status"] == "completed":
            return "ok"
        if data["status"] == "failed":
            return data["error"]["code"]
    return "job-never-ended"


async def _run(urls: list[str], key: str, bodies: list[dict], on_half) -> list[str]:
    limit = asyncio.Semaphore(CONCURRENCY)
    clients = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        )
        for url in urls
    ]
    done = 0

    async def guarded(i: int, body: dict) -> str:
        nonlocal done
        async with limit:
            client = clients[i % len(clients)]
            outcome = await (_job(client, body) if body.pop("job", False) else _one(client, body))
        done += 1
        if done == len(bodies) // 2:
            await asyncio.to_thread(on_half)
        return outcome

    try:
        return await asyncio.gather(*(guarded(i, b) for i, b in enumerate(bodies)))
    finally:
        for client in clients:
            await client.aclose()


def test_20000_mixed_requests_over_two_processes_with_a_worker_restart(
    catalog_loaded, committed, fake_vendors, vendors
):
    from ..live import LiveServer, Worker

    env = service_extra_env(fake_vendors)
    servers = [LiveServer(env=env).start(), LiveServer(env=env).start()]
    worker = Worker(env=env, concurrency=8, name="soak").start()
    user = make_user("soak", "5000", rpm=10_000_000)
    rng = random.Random(20261207)
    try:
        warm = [_request(i, rng, FAULTS, MODELS) for i in range(200)]
        asyncio.run(_run([s.url for s in servers], user.raw_key, warm, lambda: None))
        rss_before = [rss_mb(s.proc.pid) for s in servers]
        sockets_before = [open_connections(s.proc.pid) for s in servers]
        bodies = [_request(i, rng, FAULTS, MODELS) for i in range(REQUESTS)]
        for body in bodies:
            body["job"] = rng.random() < JOB_SHARE

        def restart_worker():
            worker.stop()
            worker.start()

        started = time.monotonic()
        outcomes = asyncio.run(_run([s.url for s in servers], user.raw_key, bodies, restart_worker))
        seconds = time.monotonic() - started
        rss_after = [rss_mb(s.proc.pid) for s in servers]
        sockets_after = [open_connections(s.proc.pid) for s in servers]
    finally:
        worker.stop()
        for server in servers:
            server.stop()
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    open_holds = Hold.objects.filter(account=user.account, status=Hold.OPEN).count()
    print(
        f"\nSOAK requests={REQUESTS} seconds={seconds:.0f} rate={REQUESTS / seconds:.0f}/s outcomes={counts} "
        f"rss_mb={rss_before}->{rss_after} sockets={sockets_before}->{sockets_after} open_holds={open_holds}"
    )
    assert not {o for o in outcomes if o != "ok" and o not in CATALOG}, counts
    assert counts.get("ok", 0) > REQUESTS // 2
    assert open_holds == 0
    rows = usage_rows(user)
    charged = -usd(
        LedgerEntry.objects.filter(account=user.account, kind="charge").aggregate(s=Sum("amount"))["s"]
    )
    assert charged == sum((r.cost_usd for r in rows), Decimal(0))
    assert balance_of(user) == Decimal("5000") - charged
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []
    for before, after in zip(rss_before, rss_after, strict=True):
        assert after < before * 1.25 + 10, "memory grew during the run"
