"""GET /v1/llm/usage/history, /v1/llm/usage/breakdown (aggregated in SQL, in the caller's time
zone) and /v1/llm/balance (spendable, held by requests in flight, total)."""

import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import ledger
from billing import usage_history
from billing.models import UsageLog

from ..conftest import usage_rows

UTC = timezone.utc


@pytest.fixture
def get(api_server, alice):
    def call(path, **params):
        return httpx.get(
            f"{api_server}/v1/llm/{path}", params=params, headers={"X-API-Key": alice.raw_key}, timeout=30
        )

    return call


def log(
    user,
    when: datetime,
    model: str = "gpt-4o",
    prompt: int = 10,
    completion: int = 5,
    cost: str = "0.01",
    **extra,
) -> UsageLog:
    row = UsageLog.objects.create(
        user_id=user.pk,
        api_key=user.key,
        request_id=f"req_{uuid.uuid4().hex}",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=Decimal(cost),
        **extra,
    )
    UsageLog.objects.filter(pk=row.pk).update(created_at=when)
    return row


def test_history_lists_your_requests_newest_first(api_server, get, alice, bob, vendors):
    for text in ("first call", "second call please"):
        r = httpx.post(
            f"{api_server}/v1/llm/chat/completions",
            headers={"X-API-Key": alice.raw_key},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
        )
        assert r.status_code == 200
    log(bob, datetime.now(UTC))
    data = get("usage/history", limit=1).json()["data"]
    assert (data["total"], data["limit"], data["offset"]) == (2, 1, 0)
    [newest] = data["logs"]
    rows = usage_rows(alice)
    assert newest["request_id"] == rows[-1].request_id
    assert {
        k: newest[k]
        for k in (
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "reasoning_tokens",
            "total_tokens",
            "status",
            "endpoint",
        )
    } == {
        "model": "gpt-4o",
        "prompt_tokens": 6,
        "completion_tokens": 4,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 10,
        "status": "ok",
        "endpoint": "native_chat",
    }
    assert newest["cost_usd"] == float(rows[-1].cost_usd) > 0 and newest["created_at"].startswith("20")
    older = get("usage/history", limit=5, offset=1).json()["data"]["logs"]
    assert [r["request_id"] for r in older] == [rows[0].request_id]
    assert get("usage/history", limit=201).json()["error"]["code"] == "invalid_parameter"
    assert get("usage/history", offset=-1).json()["error"]["code"] == "invalid_parameter"


@pytest.fixture
def spread(alice, bob):
    """Alice's requests around midnight UTC on Monday 2025-03-10 (Berlin is UTC+1 then)."""
    log(alice, datetime(2025, 3, 9, 22, 30, tzinfo=UTC), cost="0.50")  # Sun UTC; Sun 23:30 Berlin
    log(alice, datetime(2025, 3, 10, 12, 0, tzinfo=UTC), cost="0.25")
    log(
        alice,
        datetime(2025, 3, 10, 23, 30, tzinfo=UTC),
        model="claude-haiku-4-5",
        cost="0.125",
        cached_tokens=4,
        reasoning_tokens=2,
    )  # Mon UTC; Tue 00:30 Berlin
    log(alice, datetime(2025, 3, 17, 9, 0, tzinfo=UTC), cost="1")
    log(bob, datetime(2025, 3, 10, 12, 0, tzinfo=UTC), cost="9")


def buckets(response, *keys):
    return [tuple(b[k] for k in keys) for b in response.json()["data"]["buckets"]]


def test_daily_breakdown_follows_the_time_zone(get, spread):
    utc = get("usage/breakdown", period="day", start="2025-03-09", end="2025-03-11")
    assert buckets(utc, "period_start", "requests", "cost_usd") == [
        ("2025-03-09", 1, 0.5),
        ("2025-03-10", 2, 0.375),
    ]
    berlin = get("usage/breakdown", period="day", start="2025-03-09", end="2025-03-11", tz="Europe/Berlin")
    assert buckets(berlin, "period_start", "requests", "cost_usd") == [
        ("2025-03-09", 1, 0.5),
        ("2025-03-10", 1, 0.25),
        ("2025-03-11", 1, 0.125),
    ]
    data = berlin.json()["data"]
    assert (data["tz"], data["start"], data["end"], data["group_by"]) == (
        "Europe/Berlin",
        "2025-03-09",
        "2025-03-11",
        None,
    )
    assert data["totals"] == {
        "requests": 3,
        "prompt_tokens": 30,
        "completion_tokens": 15,
        "cached_tokens": 4,
        "reasoning_tokens": 2,
        "total_tokens": 45,
        "cost_usd": 0.875,
    }


def test_weekly_breakdown_by_model(get, spread):
    r = get("usage/breakdown", period="week", start="2025-03-03", end="2025-03-23", group_by="model")
    assert buckets(r, "period_start", "model", "requests", "total_tokens", "cost_usd") == [
        ("2025-03-03", "gpt-4o", 1, 15, 0.5),
        ("2025-03-10", "claude-haiku-4-5", 1, 15, 0.125),
        ("2025-03-10", "gpt-4o", 1, 15, 0.25),
        ("2025-03-17", "gpt-4o", 1, 15, 1.0),
    ]
    berlin = get("usage/breakdown", period="week", start="2025-03-03", end="2025-03-23", tz="Europe/Berlin")
    assert buckets(berlin, "period_start", "requests") == [
        ("2025-03-03", 1),
        ("2025-03-10", 2),
        ("2025-03-17", 1),
    ]
    # end is inclusive and local: the Monday 2025-03-17 request is outside a range ending on Sunday the 16th
    assert (
        get("usage/breakdown", period="week", start="2025-03-10", end="2025-03-16").json()["data"]["totals"][
            "requests"
        ]
        == 2
    )


@pytest.mark.parametrize(
    "params,field",
    [
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"tz": "  "}, "tz"),
        ({"period": "month"}, "period"),
        ({"group_by": "key"}, "group_by"),
        ({"start": "2025-13-01"}, "start"),
        ({"start": "2025-03-10", "end": "2025-03-01"}, "start"),
        ({"start": "2020-01-01", "end": "2025-01-01"}, "end"),
        ({"start": "0001-01-01"}, "start"),
        ({"end": "9999-12-31"}, "end"),
    ],
)
def test_bad_breakdown_parameters_are_400(get, params, field):
    r = get("usage/breakdown", **params)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_parameter")
    assert r.json()["error"]["meta"]["field"] == field


def test_breakdown_is_two_aggregate_queries_whatever_the_row_count(alice, spread, committed):
    for i in range(50):
        log(alice, datetime(2025, 3, 12, i % 24, tzinfo=UTC))
    with CaptureQueriesContext(connection) as queries:
        data = usage_history.breakdown(
            alice.pk, period="day", start=None, end=None, tz="Asia/Tokyo", group_by="model"
        )
        data = usage_history.breakdown(
            alice.pk,
            period="week",
            start=datetime(2025, 3, 1).date(),
            end=datetime(2025, 3, 31).date(),
            tz="Asia/Tokyo",
            group_by="model",
        )
    assert data["totals"]["requests"] == 54
    assert len(queries) == 4 and all(
        "GROUP BY" in q["sql"].upper() or "SUM(" in q["sql"].upper() for q in queries.captured_queries
    )


def test_balance_shows_what_requests_in_flight_hold(api_server, get, alice, vendors):
    hold = ledger.hold(account_id=alice.account.pk, amount=Decimal("1.25"), idempotency_key=uuid.uuid4().hex)
    data = get("balance").json()["data"]
    assert data == {"balance_usd": 8.75, "held_usd": 1.25, "total_usd": 10.0, "currency": "USD"}
    ledger.release(hold_id=hold.id)

    done = threading.Event()

    def slow_request():
        httpx.post(
            f"{api_server}/v1/llm/chat/completions",
            headers={"X-API-Key": alice.raw_key},
            timeout=30,
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "[[fault:slow_first_byte]] hi"}],
            },
        )
        done.set()

    threading.Thread(target=slow_request, daemon=True).start()
    deadline, seen = time.monotonic() + 3, None
    while time.monotonic() < deadline and not done.is_set():
        seen = get("balance").json()["data"]
        if seen["held_usd"] > 0:
            break
        time.sleep(0.05)
    assert (
        seen
        and seen["held_usd"] > 0
        and seen["balance_usd"] == round(seen["total_usd"] - seen["held_usd"], 8)
    )
    assert seen["total_usd"] == 10.0
    assert done.wait(15)
    after = httpx.get(
        f"{api_server}/v1/llm/balance", headers={"Authorization": f"Bearer {alice.raw_key}"}
    ).json()
    assert after["data"]["held_usd"] == 0 and after["data"]["total_usd"] == after["data"]["balance_usd"] < 10
