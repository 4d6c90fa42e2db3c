"""Our own faults: a worker killed mid-job, an app process killed mid-stream, Redis restarted
under load, database connections dropped under load. No job stays running, no money is lost
or charged twice, and the ledger agrees afterwards."""

import shutil
import signal
import socket
import subprocess
import time
from decimal import Decimal

import httpx
import pytest
from django.db import connection

from billing import ledger
from billing.models import Hold
from llm.models import ChatJob

from ..conftest import balance_of, make_user, service_extra_env
from ..live import LiveServer, Worker, free_port


def wait_for(predicate, timeout=20.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def chat(base, user, text, **extra):
    return httpx.post(
        f"{base}/v1/openai/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {user.raw_key}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra},
    )


def test_worker_killed_mid_job_is_reaped_and_nothing_is_charged(api_server, committed, fake_vendors, vendors):
    from llm import chat_worker

    worker = Worker(env=service_extra_env(fake_vendors), name="doomed").start()
    user = make_user("jobkill", "3")
    try:
        job_id = httpx.post(
            f"{api_server}/v1/llm/chat/jobs",
            headers={"X-API-Key": user.raw_key},
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "[[fault:slow_first_byte]] slow one"}],
            },
        ).json()["data"]["job_id"]
        assert wait_for(lambda: ChatJob.objects.get(pk=job_id).status == ChatJob.RUNNING)
        worker.kill()
    finally:
        worker.stop()
    assert ChatJob.objects.get(pk=job_id).status == ChatJob.RUNNING  # nobody finished it
    assert chat_worker.reap(budget_seconds=0) >= 1
    job = ChatJob.objects.get(pk=job_id)
    assert job.status == ChatJob.FAILED
    assert balance_of(user) == Decimal("3")
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def test_app_process_killed_mid_stream_loses_no_money(catalog_loaded, committed, fake_vendors, vendors):
    server = LiveServer(env=service_extra_env(fake_vendors)).start()
    user = make_user("appkill", "3")
    vendors["openai"].chunk_delay = 0.05
    try:
        words = " ".join(f"w{i}" for i in range(100))
        with httpx.stream(
            "POST",
            f"{server.url}/v1/openai/chat/completions",
            headers={"Authorization": f"Bearer {user.raw_key}"},
            json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": words}]},
        ) as response:
            for i, _ in enumerate(response.iter_lines()):
                if i == 6:
                    server.proc.send_signal(signal.SIGKILL)
                    break
    except httpx.HTTPError:
        pass
    finally:
        vendors["openai"].chunk_delay = 0.0
        server.stop()
    open_holds = Hold.objects.filter(account=user.account, status=Hold.OPEN)
    assert open_holds.count() == 1  # the dead process never settled it
    ledger.release_stale_holds(older_than_seconds=0)
    assert not open_holds.exists()
    assert balance_of(user) == Decimal("3")
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    state = {"proc": None, "port": port}

    def start():
        state["proc"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=10)

    def stop():
        state["proc"].kill()
        state["proc"].wait()

    start()
    state.update(start=start, stop=stop)
    yield state
    if state["proc"].poll() is None:
        stop()


def test_redis_restart_under_load_degrades_and_recovers(
    catalog_loaded, committed, fake_vendors, vendors, private_redis
):
    env = {**service_extra_env(fake_vendors), "REDIS_URL": f"redis://127.0.0.1:{private_redis['port']}/0"}
    server = LiveServer(env=env).start()
    user = make_user("redisdown", "3")
    try:
        before = [chat(server.url, user, f"before {i}").status_code for i in range(10)]
        private_redis["stop"]()
        during = [chat(server.url, user, f"during {i}") for i in range(10)]
        private_redis["start"]()
        after = [chat(server.url, user, f"after {i}").status_code for i in range(10)]
    finally:
        server.stop()
    assert before == [200] * 10
    # rate limiting fails open by default (GPUNIQ_RATE_LIMIT_FAIL_OPEN=1): service goes on without Redis
    assert [r.status_code for r in during] == [200] * 10, [r.text for r in during if r.status_code != 200]
    assert after == [200] * 10
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []


@pytest.mark.postgres
def test_dropped_database_connections_under_load_lose_no_money(
    catalog_loaded, committed, fake_vendors, vendors
):
    from ..live import test_database_url

    name = "gpuniq-pgdrop"  # only this server's sessions are cut, not the rest of the test run's
    env = {
        **service_extra_env(fake_vendors),
        "DATABASE_URL": f"{test_database_url()}?application_name={name}",
    }
    server = LiveServer(env=env).start()
    user = make_user("pgdrop", "3")
    codes = []
    try:
        for i in range(30):
            if i % 10 == 5:
                with connection.cursor() as cursor:  # cut every session of the server process
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = %s",
                        [name],
                    )
                    assert cursor.fetchone()[0] > 0
            codes.append(chat(server.url, user, f"request {i}").status_code)
    finally:
        server.stop()
    assert codes == [200] * 30
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []
