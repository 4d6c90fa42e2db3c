"""A mixed run of concurrent requests with injected upstream failures: every request ends in a
complete reply or a catalog error, and the money adds up afterwards."""

import asyncio
import json
import random
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum

from billing import ledger
from billing.models import Hold, LedgerEntry
from billing.money import usd  # SQLite sums decimals as floats
from gpuniq_site.errors import CATALOG

from ..conftest import balance_of, make_user, usage_rows

FAULTS = [None] * 6 + ["500", "429", "cutoff", "no_usage", "malformed", "400", "midstream_error"]
# the reliability run adds slow and stalled upstreams; grok-4's first route is a closed port
SLOW_FAULTS = FAULTS + [None] * 6 + ["slow_first_byte", "stall", "refuse", "503"]
MODELS = ["gpt-4o", "claude-haiku-4-5", "gemini-2.5-pro", "deepseek-chat"]


def _request(i: int, rng: random.Random, faults=FAULTS, models=MODELS) -> dict:
    fault = rng.choice(faults)
    text = f"request {i} " + ("[[fault:%s]] " % fault if fault else "") + "tell me something"
    stream = rng.random() < 0.5 or fault == "stall"  # "a stream that stalls": the idle timeout ends it
    return {
        "model": rng.choice(models),
        "stream": stream,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    }


async def _one(client: httpx.AsyncClient, body: dict) -> str:
    """'ok' for a complete reply, else the catalog code the client was given."""
    if not body["stream"]:
        r = await client.post("/v1/openai/chat/completions", json=body)
        if r.status_code == 200:
            return "ok" if r.json()["choices"][0]["message"]["content"].startswith("Echo:") else "bad-reply"
        return r.json()["error"]["code"]
    async with client.stream("POST", "/v1/openai/chat/completions", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return json.loads(r.text)["error"]["code"]
        raw = (await r.aread()).decode()
    if raw.rstrip().endswith("data: [DONE]"):
        return "ok"
    for line in raw.splitlines():
        if line.startswith("data: {") and '"error"' in line:
            return json.loads(line[6:])["error"]["code"]
    return "truncated-without-error"


async def _run(base_url: str, key: str, bodies: list[dict], concurrency: int) -> list[str]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def guarded(body):
            async with limit:
                return await _one(client, body)

        return await asyncio.gather(*(guarded(b) for b in bodies))


@pytest.fixture
def own_server(catalog_loaded, fake_vendors):
    """A server of its own: the faults trip route cool-downs, which other tests must not inherit."""
    from django.conf import settings

    from ..conftest import service_extra_env
    from ..live import LiveServer

    from ..fakes.common import closed_port_url

    env = {**service_extra_env(fake_vendors), "UPSTREAM_XAI_BASE_URL": closed_port_url() + "/v1"}
    server = LiveServer(env=env).start()
    yield server
    server.stop()
    if settings.HAS_REDIS:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("gpuniq:route:*"):
            client.delete(key)


def test_500_mixed_requests_with_faults_keep_the_ledger_exact(own_server, committed, vendors):
    user = make_user("load", "50", rpm=100_000)
    rng = random.Random(20261127)
    bodies = [_request(i, rng) for i in range(500)]

    outcomes = asyncio.run(_run(own_server.url, user.raw_key, bodies, concurrency=25))

    unknown = {o for o in outcomes if o != "ok" and o not in CATALOG}
    assert not unknown, f"outcomes outside the catalog: {unknown}"
    assert outcomes.count("ok") > 250
    assert len(set(outcomes)) > 2, "faults should have produced errors"
    rows = usage_rows(user)
    assert len(rows) == 500
    charged = -usd(
        LedgerEntry.objects.filter(account=user.account, kind="charge").aggregate(s=Sum("amount"))["s"]
    )
    assert charged == sum((r.cost_usd for r in rows), Decimal(0))
    assert balance_of(user) == Decimal("50") - charged
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_connections(pid: int) -> int:
    import os

    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # closed between listing and reading
            pass
    return count


def test_1000_requests_at_concurrency_50_with_every_upstream_fault(own_server, committed, vendors):
    """The reliability run: figures go to docs/reliability.md."""
    user = make_user("reliability", "100", rpm=100_000)
    rng = random.Random(8)
    warmup = [_request(i, rng, SLOW_FAULTS, MODELS + ["grok-4"]) for i in range(100)]
    asyncio.run(_run(own_server.url, user.raw_key, warmup, concurrency=50))
    rss_before, sockets_before = rss_mb(own_server.proc.pid), open_connections(own_server.proc.pid)

    bodies = [_request(i, rng, SLOW_FAULTS, MODELS + ["grok-4"]) for i in range(1000)]
    outcomes = asyncio.run(_run(own_server.url, user.raw_key, bodies, concurrency=50))

    rss_after, sockets_after = rss_mb(own_server.proc.pid), open_connections(own_server.proc.pid)
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    print(
        f"\nRELIABILITY outcomes={counts} rss_mb={rss_before:.1f}->{rss_after:.1f} "
        f"sockets={sockets_before}->{sockets_after}"
    )
    assert not {o for o in outcomes if o != "ok" and o not in CATALOG}, counts
    assert counts.get("ok", 0) > 500
    rows = usage_rows(user)
    assert len(rows) == 1100
    charged = -usd(
        LedgerEntry.objects.filter(account=user.account, kind="charge").aggregate(s=Sum("amount"))["s"]
    )
    assert charged == sum((r.cost_usd for r in rows), Decimal(0))
    assert balance_of(user) == Decimal("100") - charged
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert ledger.find_mismatches() == []
    assert rss_after < rss_before * 1.25 + 10, "memory grew during the run"
    assert sockets_after <= sockets_before + 60, "sockets leaked during the run"
