"""Per-key sliding window: 120/min by default, 429 rate_limit_per_key with OpenAI's headers."""

import pytest
from django.conf import settings

from accounts import ratelimit
from gpuniq_site.db import run_db

from ..conftest import make_user


async def test_over_the_limit_is_429_with_retry_after_and_openai_headers(async_client, committed):
    user = await run_db(make_user, "rl", "1", rpm=3)
    headers = {"Authorization": f"Bearer {user.raw_key}"}
    remaining = []
    for _ in range(3):
        ok = await async_client.get("/v1/openai/models", headers=headers)
        assert ok.status_code == 200
        remaining.append(ok["x-ratelimit-remaining-requests"])
    refused = await async_client.get("/v1/openai/models", headers=headers)

    assert remaining == ["2", "1", "0"]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_per_key"
    assert refused["x-ratelimit-limit-requests"] == "3"
    assert refused["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["x-ratelimit-reset-requests"].endswith("s")


def test_native_surface_counts_against_the_same_key(client, committed):
    user = make_user("rl-native", "1", rpm=2)
    assert client.get("/v1/llm/balance", HTTP_X_API_KEY=user.raw_key).status_code == 200
    assert client.get("/v1/openai/models", HTTP_AUTHORIZATION=f"Bearer {user.raw_key}").status_code == 200
    refused = client.get("/v1/llm/balance", HTTP_X_API_KEY=user.raw_key)
    assert refused.status_code == 429
    assert refused.json()["success"] is False
    assert refused.json()["error"]["code"] == "rate_limit_per_key"


def test_limits_are_per_key():
    key_a, key_b = 10_000_001, 10_000_002
    assert [ratelimit.hit(key_a, 2).allowed for _ in range(3)] == [True, True, False]
    assert ratelimit.hit(key_b, 2).allowed


@pytest.mark.redis
async def test_redis_window_is_shared_by_every_client_of_the_same_redis():
    """Two independent Redis connections (as two processes would have) share one window."""
    import redis.asyncio as aioredis

    other = aioredis.Redis.from_url(settings.REDIS_URL)
    key_id = 20_000_001
    first = await ratelimit.ahit(key_id, 5)
    for _ in range(4):
        await other.eval(ratelimit._LUA, 1, ratelimit._redis_key(key_id), ratelimit.WINDOW_MS, 5, f"m{_}")
    assert first.allowed and first.remaining == 4
    assert (await ratelimit.ahit(key_id, 5)).allowed is False
    assert 0 < (await other.pttl(ratelimit._redis_key(key_id))) <= 60_000
    await other.aclose()


@pytest.mark.redis
async def test_a_redis_that_forgot_the_script_still_counts_in_redis(monkeypatch):
    """After a Redis restart (or SCRIPT FLUSH) the limiter sends its script whole, and keeps
    counting in Redis: redis-py's NoScriptError is not an outage."""
    import redis.asyncio as aioredis

    from gpuniq_site import shared_state

    monkeypatch.setattr(shared_state, "_health", shared_state._RedisHealth())  # an outage here stays here
    other = aioredis.Redis.from_url(settings.REDIS_URL)
    key_id = 20_000_002
    assert (await ratelimit.ahit(key_id, 5)).mode == ""  # the script is loaded and its sha kept
    await other.script_flush()
    again = await ratelimit.ahit(key_id, 5)
    assert again.allowed and again.mode == "" and again.remaining == 3
    assert await other.zcard(ratelimit._redis_key(key_id)) == 2
    await other.aclose()


@pytest.mark.redis
def test_redis_down_fails_open_by_default(settings, monkeypatch):
    from gpuniq_site import shared_state

    monkeypatch.setattr(shared_state, "_health", shared_state._RedisHealth())  # this test's outage stays here
    monkeypatch.setattr(shared_state, "_sync_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    decision = ratelimit.hit(30_000_001, 5)
    assert decision.allowed and decision.mode == "local"
    settings.GPUNIQ_RATE_LIMIT_FAIL_OPEN = False
    monkeypatch.setattr(shared_state, "_sync_client", None)
    from gpuniq_site.errors import ApiError

    with pytest.raises(ApiError) as caught:
        ratelimit.hit(30_000_001, 5)
    assert caught.value.code == "service_unavailable"
    monkeypatch.setattr(shared_state, "_sync_client", None)
