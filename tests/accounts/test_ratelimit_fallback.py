"""Fail-open is not unlimited: an app process that cannot reach Redis limits each key locally with
its share of the key's limit (rpm / GPUNIQ_APP_PROCESSES), and says so in its headers, its health
output and its metrics; once Redis answers again it goes back to the shared window."""

import time

import httpx
import pytest

from ..conftest import make_user, service_extra_env
from ..live import LiveServer, free_port
from ..proxy import TcpProxy


def wait_for(predicate, timeout=15.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def metric(server_url: str, name: str) -> float:
    for line in httpx.get(f"{server_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture(scope="module")
def redisless(catalog_loaded, fake_vendors):
    """One of two app processes (GPUNIQ_APP_PROCESSES=2), its Redis a closed port."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = LiveServer(
        env={
            **service_extra_env(fake_vendors),
            "REDIS_URL": closed,
            "CELERY_BROKER_URL": closed,
            "GPUNIQ_APP_PROCESSES": "2",
        }
    ).start()
    yield server
    server.stop()


def test_without_redis_a_process_enforces_its_share_of_the_limit(redisless, committed):
    user = make_user("quota", "1", rpm=120)
    headers = {"Authorization": f"Bearer {user.raw_key}"}
    responses = [
        httpx.get(f"{redisless.url}/v1/openai/models", headers=headers, timeout=10) for _ in range(55)
    ]
    responses += [httpx.get(f"{redisless.url}/v1/llm/chats", headers=headers, timeout=10) for _ in range(10)]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 60 + [429] * 5  # 120 / 2 processes, the async and DRF paths share it
    first, last_ok, refused = responses[0], responses[59], responses[-1]
    assert first.headers["x-ratelimit-mode"] == "local"
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert first.headers["x-ratelimit-remaining-requests"] == "59"
    assert last_ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["code"] == "rate_limit_per_key"
    assert int(refused.headers["Retry-After"]) >= 1


def test_without_redis_health_and_metrics_say_the_limit_is_local(redisless, committed):
    user = make_user("quota", "1", rpm=120)
    httpx.get(f"{redisless.url}/v1/openai/models", headers={"X-API-Key": user.raw_key}, timeout=10)
    health = httpx.get(f"{redisless.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok", "ratelimit": "local"}
    assert metric(redisless.url, "gpuniq_ratelimit_local_mode") == 1
    assert metric(redisless.url, "gpuniq_ratelimit_fallbacks_total") >= 1
    ready = httpx.get(f"{redisless.url}/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["redis", "broker"]


@pytest.mark.redis
def test_a_redis_outage_falls_back_locally_and_recovers(catalog_loaded, committed, fake_vendors):
    from django.conf import settings

    host, port = settings.REDIS_URL.split("//", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port)).start()
    via_proxy = proxy.url_for(settings.REDIS_URL)
    server = LiveServer(
        env={**service_extra_env(fake_vendors), "REDIS_URL": via_proxy, "GPUNIQ_REDIS_RETRY_SECONDS": "0.2"}
    ).start()
    user = make_user("outage", "1", rpm=120)

    def models():
        return httpx.get(f"{server.url}/v1/openai/models", headers={"X-API-Key": user.raw_key}, timeout=10)

    try:
        before = models()
        proxy.cut()
        during = [models() for _ in range(3)]
        health_during = httpx.get(f"{server.url}/healthz").json()["ratelimit"]
        proxy.restore()
        assert wait_for(lambda: "x-ratelimit-mode" not in models().headers)
        health_after = httpx.get(f"{server.url}/healthz").json()["ratelimit"]
    finally:
        server.stop()
        proxy.stop()
    assert before.status_code == 200 and "x-ratelimit-mode" not in before.headers
    assert [r.status_code for r in during] == [200] * 3
    assert [r.headers["x-ratelimit-mode"] for r in during] == ["local"] * 3
    assert (health_during, health_after) == ("local", "redis")
