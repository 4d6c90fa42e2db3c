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
from gpuniq_site.errors import CATALOG

from .conftest import balance_of, make_user, usage_rows

FAULTS = [None] * 6 + ["500", "429", "cutoff", "no_usage", "malformed", "400", "midstream_error"]
MODELS = ["gpt-4o", "claude-haiku-4-5", "gemini-2.5-pro", "deepseek-chat"]


def _request(i: int, rng: random.Random) -> dict:
    fault = rng.choice(FAULTS)
    text = f"request {i} " + ("[[fault:%s]] " % fault if fault else "") + "tell me something"
    return {"model": rng.choice(MODELS), "stream": rng.random() < 0.5, "max_tokens": 50,
            "messages": [{"role": "user", "content": text}]}


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
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def guarded(body):
            async with limit:
                return await _one(client, body)

        return await asyncio.gather(*(guarded(b) for b in bodies))


@pytest.fixture
def own_server(catalog_loaded, fake_vendors):
    """A server of its own: the faults trip route cool-downs, which other tests must not inherit."""
    from django.conf import settings

    from .conftest import service_extra_env
    from .live import LiveServer

    server = LiveServer(env=service_extra_env(fake_vendors)).start()
    yield server.url
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

    outcomes = asyncio.run(_run(own_server, user.raw_key, bodies, concurrency=25))

    unknown = {o for o in outcomes if o != "ok" and o not in CATALOG}
    assert not unknown, f"outcomes outside the catalog: {unknown}"
    assert outcomes.count("ok") > 250
    assert len(set(outcomes)) > 2, "faults should have produced errors"
    rows = usage_rows(user)
    assert len(rows) == 500
    charged = -(LedgerEntry.objects.filter(account=user.account, kind="charge").aggregate(s=Sum("amount"))["s"])
    assert charged == sum((r.cost_usd for r in rows), Decimal(0))
    assert balance_of(user) == Decimal("50") - charged
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []
