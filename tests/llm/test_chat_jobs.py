"""Long-poll chat jobs: kickoff in well under a second, a real Celery worker runs the call,
GET ?wait=N holds until done, charged once; another user's job is a 404."""

import time
from decimal import Decimal

import httpx
import pytest

from billing import ledger
from billing.models import Hold, LedgerEntry
from llm.models import ChatJob

from ..conftest import balance_of, make_user, usage_rows

HAIKU_IN, HAIKU_OUT = Decimal("0.80"), Decimal("4.00")


@pytest.fixture
def frank(committed):
    # Frank: $5, uses the long-poll API.
    return make_user("frank", "5")


def headers(user):
    return {"X-API-Key": user.raw_key}


def test_job_runs_on_the_worker_and_long_poll_returns_the_native_result(
    api_server, celery_worker_proc, frank, vendors
):
    started = time.perf_counter()
    kickoff = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=headers(frank),
        json={"messages": [{"role": "user", "content": "Tell me a long story"}], "max_tokens": 8000},
    )
    kickoff_seconds = time.perf_counter() - started
    assert kickoff.status_code == 202, kickoff.text
    job_id = kickoff.json()["data"]["job_id"]
    assert job_id.startswith("cjob_") and kickoff.json()["data"]["status"] == "pending"
    assert kickoff_seconds < 1.0

    polled = httpx.get(
        f"{api_server}/v1/llm/chat/jobs/{job_id}", params={"wait": 20}, headers=headers(frank), timeout=30
    ).json()["data"]
    assert polled["status"] == "completed", polled
    result = polled["result"]
    assert result["content"] == "Echo: Tell me a long story"  # the default model, through the Anthropic fake
    assert result["model"] == "claude-haiku-4-5"
    cost = (result["prompt_tokens"] * HAIKU_IN + result["completion_tokens"] * HAIKU_OUT) / 1_000_000
    assert Decimal(str(result["cost_usd"])) == cost
    assert balance_of(frank) == Decimal("5") - cost
    assert Decimal(str(result["balance_usd"])) == balance_of(frank)
    assert vendors["anthropic"].requests[-1]["json"]["max_tokens"] == 8000

    # reading it again charges nothing more
    again = httpx.get(f"{api_server}/v1/llm/chat/jobs/{job_id}", headers=headers(frank)).json()["data"]
    assert again["result"] == result
    assert LedgerEntry.objects.filter(account=frank.account, kind="charge").count() == 1
    assert [r.endpoint for r in usage_rows(frank)] == ["chat_job"]


def test_failed_job_costs_nothing(api_server, celery_worker_proc, frank, vendors):
    kickoff = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=headers(frank),
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "[[fault:500]]"}]},
    )
    job_id = kickoff.json()["data"]["job_id"]
    polled = httpx.get(
        f"{api_server}/v1/llm/chat/jobs/{job_id}", params={"wait": 20}, headers=headers(frank), timeout=30
    ).json()["data"]
    assert polled["status"] == "failed"
    assert polled["error"]["code"] == "all_routes_failed"
    assert balance_of(frank) == Decimal("5")
    assert not Hold.objects.filter(account=frank.account, status=Hold.OPEN).exists()


def test_same_idempotency_key_gives_the_same_job_and_one_hold(api_server, celery_worker_proc, frank, vendors):
    body = {"messages": [{"role": "user", "content": "only once"}]}
    h = {**headers(frank), "Idempotency-Key": "retry-123"}
    first = httpx.post(f"{api_server}/v1/llm/chat/jobs", headers=h, json=body).json()["data"]["job_id"]
    second = httpx.post(f"{api_server}/v1/llm/chat/jobs", headers=h, json=body).json()["data"]["job_id"]
    assert first == second
    httpx.get(
        f"{api_server}/v1/llm/chat/jobs/{first}", params={"wait": 20}, headers=headers(frank), timeout=30
    )
    assert ChatJob.objects.filter(user_id=frank.pk).count() == 1
    assert LedgerEntry.objects.filter(account=frank.account, kind="charge").count() == 1
    assert ledger.find_mismatches() == []


def test_same_idempotency_key_with_a_different_body_is_a_409_and_holds_nothing(api_server, frank, committed):
    h = {**headers(frank), "Idempotency-Key": "retry-456"}
    first = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=h,
        json={"messages": [{"role": "user", "content": "first question"}]},
    )
    assert first.status_code == 202
    job_id = first.json()["data"]["job_id"]
    changed = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=h,
        json={"messages": [{"role": "user", "content": "a different question"}]},
    )
    assert changed.status_code == 409, changed.text
    error = changed.json()["error"]
    assert error["code"] == "idempotency_conflict" and error["meta"]["job_id"] == job_id
    other_model = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=h,
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "first question"}]},
    )
    assert other_model.status_code == 409
    same = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=h,  # the default model, spelled out
        json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "first question"}]},
    )
    assert same.status_code == 202 and same.json()["data"]["job_id"] == job_id
    assert ChatJob.objects.filter(user_id=frank.pk).count() == 1
    assert Hold.objects.filter(account=frank.account).count() == 1  # the replays held nothing
    grace = make_user("grace", "1")  # Grace's keys are her own: the same key, another body, a new job
    assert (
        httpx.post(
            f"{api_server}/v1/llm/chat/jobs",
            headers={**headers(grace), "Idempotency-Key": "retry-456"},
            json={"messages": [{"role": "user", "content": "a different question"}]},
        ).status_code
        == 202
    )


def test_another_users_job_is_404_and_bad_wait_is_400(api_server, frank, committed):
    grace = make_user("grace", "1")
    job_id = httpx.post(
        f"{api_server}/v1/llm/chat/jobs",
        headers=headers(frank),
        json={"messages": [{"role": "user", "content": "mine"}]},
    ).json()["data"]["job_id"]
    other = httpx.get(f"{api_server}/v1/llm/chat/jobs/{job_id}", headers=headers(grace))
    assert other.status_code == 404 and other.json()["error"]["code"] == "job_not_found"
    bad = httpx.get(f"{api_server}/v1/llm/chat/jobs/{job_id}", params={"wait": 99}, headers=headers(frank))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"


def test_reaper_fails_a_job_whose_worker_died_and_releases_its_hold(committed):
    from llm import chat_worker

    user = make_user("henry", "2")
    hold = ledger.hold(account_id=user.account.pk, amount="1", idempotency_key="job-hold-reap")
    job = ChatJob.objects.create(
        user_id=user.pk,
        request={"model": "gpt-4o", "messages": []},
        hold_id=hold.id,
        request_id="req_reap",
        status=ChatJob.RUNNING,
    )
    ChatJob.objects.filter(pk=job.pk).update(created_at="2020-01-01T00:00:00Z")
    assert chat_worker.reap() >= 1
    job.refresh_from_db()
    assert job.status == ChatJob.FAILED and job.error["code"] == "upstream_timeout"
    assert Hold.objects.get(pk=hold.id).status == Hold.RELEASED
    assert balance_of(user) == Decimal("2")


@pytest.mark.postgres
def test_jobs_do_not_leave_database_sessions_behind(api_server, celery_worker_proc, frank, vendors):
    """Each job runs in an event loop of its own; its connections must close with it."""
    from django.db import connection

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    def run_jobs(count):
        ids = [
            httpx.post(
                f"{api_server}/v1/llm/chat/jobs",
                headers=headers(frank),
                json={"messages": [{"role": "user", "content": f"job {i}"}]},
            ).json()["data"]["job_id"]
            for i in range(count)
        ]
        for job_id in ids:
            httpx.get(
                f"{api_server}/v1/llm/chat/jobs/{job_id}",
                params={"wait": 20},
                headers=headers(frank),
                timeout=30,
            )

    run_jobs(2)  # warm: every process has opened what it keeps
    before = sessions()
    run_jobs(12)
    assert sessions() <= before + 2
