"""What an operator watches: /metrics (Prometheus text, summed over the app processes, guarded),
/readyz naming the dependency that failed, /healthz as a bare liveness probe, and logs that are one
JSON object per line carrying the request id."""

import json
from decimal import Decimal

import httpx
import pytest

from billing import ledger
from billing.models import Hold, LedgerEntry

from ..conftest import make_user, service_extra_env
from ..live import LiveServer, samples, value


@pytest.fixture(scope="module")
def two_process_server(catalog_loaded, fake_vendors, tmp_path_factory):
    """Two uvicorn worker processes sharing a PROMETHEUS_MULTIPROC_DIR, JSON logs."""
    multiproc = tmp_path_factory.mktemp("prom")
    server = LiveServer(
        workers=2,
        env={
            **service_extra_env(fake_vendors),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "GPUNIQ_LOG_FORMAT": "json",
            "STRIPE_WEBHOOK_SECRET": "whsec_test",
            "GPUNIQ_METRICS_QUEUES": "celery,metrics-probe",
        },
    ).start()
    yield server
    server.stop()


def test_requests_are_counted_by_surface_model_and_status_across_processes(
    two_process_server, committed, vendors
):
    base = two_process_server.url
    user = make_user("metered", "5", rpm=10_000)
    before = samples(base)
    key = {"Authorization": f"Bearer {user.raw_key}"}
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    for _ in range(12):  # a fresh connection each: the kernel spreads them over both processes
        assert httpx.post(f"{base}/v1/openai/chat/completions", headers=key, json=chat).status_code == 200
    for _ in range(3):
        assert (
            httpx.post(
                f"{base}/v1/llm/chat/completions", headers=key, json={**chat, "stream": True}
            ).status_code
            == 200
        )
    assert httpx.get(f"{base}/v1/llm/chats", headers={"X-API-Key": "gpuniq_nope"}).status_code == 401
    after = samples(base)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gpuniq_requests_total", surface="openai", model="gpt-4o", status="200") == 12
    assert delta("gpuniq_requests_total", surface="native", model="gpt-4o", status="200") == 3
    assert delta("gpuniq_requests_total", surface="native", model="-", status="401") == 1
    assert delta("gpuniq_gateway_overhead_seconds_count", surface="openai") == 12
    assert delta("gpuniq_time_to_first_token_seconds_count", surface="native", model="gpt-4o") == 3


def test_the_anthropic_and_responses_doors_are_counted_by_surface_and_model(
    two_process_server, committed, vendors
):
    base = two_process_server.url
    user = make_user("doors", "5", rpm=10_000)
    key = {"X-API-Key": user.raw_key}
    claude = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    before = samples(base)
    for path in ("/v1/anthropic/v1/messages", "/v1/messages"):
        assert httpx.post(f"{base}{path}", headers=key, json=claude).status_code == 200
    assert httpx.post(f"{base}/v1/messages", headers=key, json={**claude, "stream": True}).status_code == 200
    for _ in range(2):
        response = httpx.post(
            f"{base}/v1/openai/responses", headers=key, json={"model": "gpt-4o", "input": "hi"}
        )
        assert response.status_code == 200
    after = samples(base)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gpuniq_requests_total", surface="anthropic", model="claude-haiku-4-5", status="200") == 3
    assert delta("gpuniq_requests_total", surface="openai", model="gpt-4o", status="200") == 2
    assert delta("gpuniq_gateway_overhead_seconds_count", surface="anthropic") == 2
    assert (
        delta("gpuniq_time_to_first_token_seconds_count", surface="anthropic", model="claude-haiku-4-5") == 1
    )


def test_a_streams_time_to_first_token_is_split_into_the_gateway_and_the_vendor(
    two_process_server, committed, vendors
):
    """gate (arrival → money held), vendor (→ its first event), send (→ the first chunk sent): three
    phases that add up to the time to first token, so an operator sees whose the wait is."""
    base = two_process_server.url
    user = make_user("phased", "5", rpm=10_000)
    key = {"Authorization": f"Bearer {user.raw_key}"}
    slow = {  # the vendor waits 0.3 s before its first event: less than the keep-alive interval
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "[[fault:slow_first_byte]] hi"}],
    }
    before = samples(base)
    usual, vendors["openai"].slow_seconds = vendors["openai"].slow_seconds, 0.3
    try:
        for path in ("/v1/openai/chat/completions", "/v1/llm/chat/completions"):
            for _ in range(2):
                body = httpx.post(f"{base}{path}", headers=key, json=slow, timeout=30).text
                assert "keep-alive" not in body and "[DONE]" in body  # the first chunk was the vendor's
    finally:
        vendors["openai"].slow_seconds = usual
    after = samples(base)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    for surface in ("openai", "native"):
        phases = {
            phase: delta("gpuniq_stream_start_seconds_sum", surface=surface, phase=phase)
            for phase in ("gate", "vendor", "send")
        }
        for phase in phases:
            assert delta("gpuniq_stream_start_seconds_count", surface=surface, phase=phase) == 2
        assert phases["vendor"] >= 2 * 0.3  # the vendor's wait is the vendor's
        assert 0 < phases["gate"] and 0 < phases["send"]
        ttft = delta("gpuniq_time_to_first_token_seconds_sum", surface=surface, model="gpt-4o")
        assert sum(phases.values()) == pytest.approx(ttft, abs=1e-6)


def test_money_and_queue_gauges_are_read_at_scrape_time(two_process_server, committed):
    import redis
    from django.conf import settings

    user = make_user("gauged", "5")
    held = ledger.hold(
        account_id=user.account.pk, amount=Decimal("1"), idempotency_key=f"metrics-probe:{user.pk}"
    )
    if settings.HAS_REDIS:
        probe = redis.Redis.from_url(settings.REDIS_URL)
        probe.delete("metrics-probe")
        probe.rpush("metrics-probe", "a", "b", "c")
    try:
        scrape = samples(two_process_server.url)
        open_now = Hold.objects.filter(status=Hold.OPEN).count()
    finally:
        ledger.release(hold_id=held.id)
        if settings.HAS_REDIS:
            probe.delete("metrics-probe")
    assert value(scrape, "gpuniq_open_holds") == open_now >= 1
    assert (
        value(scrape, "gpuniq_ledger_loss_entries_total") == LedgerEntry.objects.filter(kind="loss").count()
    )
    if settings.HAS_REDIS:
        assert value(scrape, "gpuniq_queue_depth", queue="metrics-probe") == 3


@pytest.mark.redis
def test_reaper_runs_on_a_worker_are_counted(two_process_server, celery_worker_proc, committed):
    import time

    from gpuniq_site.celery import app

    before = value(
        samples(two_process_server.url), "gpuniq_reaper_runs_recorded_total", reaper="llm.reap_chat_jobs"
    )
    app.send_task("llm.reap_chat_jobs")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = value(
            samples(two_process_server.url), "gpuniq_reaper_runs_recorded_total", reaper="llm.reap_chat_jobs"
        )
        if now > before:
            break
        time.sleep(0.2)
    assert now == before + 1


def test_metrics_need_the_token_when_one_is_set(catalog_loaded, fake_vendors):
    server = LiveServer(
        env={**service_extra_env(fake_vendors), "GPUNIQ_METRICS_TOKEN": "s3cret-scraper"}
    ).start()
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 403
        assert (
            httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        )
        assert samples(server.url, Authorization="Bearer s3cret-scraper")
    finally:
        server.stop()


def test_metrics_without_a_token_are_for_loopback_only(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_a_single_process_scrape_has_every_metric(client):
    """Without PROMETHEUS_MULTIPROC_DIR each process answers with its own registry: all of them."""
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from gpuniq_site import metrics

    ours = {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    assert "gpuniq_stream_start_seconds" in ours
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert ours <= {family.name for family in text_string_to_metric_families(text)}


def test_readyz_checks_database_redis_and_broker_and_healthz_stays_a_liveness_probe(two_process_server):
    from django.conf import settings

    ready = httpx.get(f"{two_process_server.url}/readyz", timeout=30)
    assert ready.status_code == 200
    redis_state = "ok" if settings.HAS_REDIS else "not configured"
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": redis_state, "broker": "ok"},
        "failed": [],
    }
    health = httpx.get(f"{two_process_server.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.postgres
def test_readyz_names_the_database_when_it_is_cut(catalog_loaded, fake_vendors):
    from django.conf import settings

    from ..live import test_database_url
    from ..proxy import TcpProxy

    db = settings.DATABASES["default"]
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)).start()
    server = LiveServer(
        env={
            **service_extra_env(fake_vendors),
            "DB_POOL_TIMEOUT": "2",
            "DATABASE_URL": proxy.url_for(test_database_url()),
        }
    ).start()
    try:
        proxy.cut()
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        health = httpx.get(f"{server.url}/healthz", timeout=30)
    finally:
        server.stop()
        proxy.stop()
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["database"]
    assert health.status_code == 200  # liveness: the process itself is fine


def test_logs_are_one_json_object_per_line_with_the_request_id(two_process_server):
    request_id = "req_jsonlog_0123456789"
    response = httpx.post(
        f"{two_process_server.url}/webhooks/stripe",
        content=b"{}",
        headers={"Stripe-Signature": "t=1,v1=bad", "x-request-id": request_id},
    )
    assert response.status_code == 400
    lines = [line for line in two_process_server.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    ours = [r for r in records if r.get("request_id") == request_id]
    assert ours and ours[0]["logger"] == "gpuniq.stripe" and ours[0]["level"] == "WARNING"


def test_worker_logs_are_json_lines_and_a_jobs_lines_carry_its_request_id(
    catalog_loaded, committed, fake_vendors, vendors
):
    import time
    import uuid

    from ..live import Worker

    tag = uuid.uuid4().hex[:8]
    env = {
        **service_extra_env(fake_vendors),
        "GPUNIQ_LOG_FORMAT": "json",
        "GPUNIQ_JOBS_QUEUE": f"logs-jobs-{tag}",
        "GPUNIQ_PERIODIC_QUEUE": f"logs-periodic-{tag}",
    }
    worker = Worker(env=env, concurrency=2, name=f"logs{tag}").start()
    server = LiveServer(env=env).start()
    user = make_user("logged", "5")
    try:
        kicked = httpx.post(
            f"{server.url}/v1/llm/chat/jobs",
            headers={"X-API-Key": user.raw_key},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "[[fault:500]]"}]},
        )
        assert kicked.status_code == 202, kicked.text
        request_id = kicked.headers["x-request-id"]
        url = f"{server.url}/v1/llm/chat/jobs/{kicked.json()['data']['job_id']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = httpx.get(url, params={"wait": 5}, headers={"X-API-Key": user.raw_key}, timeout=15)
            assert data.status_code == 200, (data.status_code, data.text[:300])
            if data.json()["data"]["status"] == "failed":
                break
    finally:
        server.stop()
        worker.stop()
    lines = worker.output().splitlines()
    started = next(i for i, line in enumerate(lines) if "ready." in line)
    # every record is one JSON object; Celery prints its banner before "ready." and "worker: Warm
    # shutdown" after, with print(), not through logging
    logged = [line for line in lines[started:] if line.strip() and not line.startswith("worker: ")]
    records = [json.loads(line) for line in logged]
    ours = [r for r in records if r.get("request_id") == request_id]
    assert any(r["logger"] == "gpuniq.gateway" and r["level"] == "WARNING" for r in ours), records
    assert any("succeeded" in r["message"] for r in records)  # Celery's own lines too
