"""Usage page: daily charts in the user's time zone, the filtered request table, the streamed CSV.
Alice's rows only ever show on Alice's pages; Bob's model name is a canary."""

import csv
import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from billing import charts, usage_stats
from billing.models import UsageLog

HTMX_TABLE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "usage-table"}
BOBS_MODEL = "bobs-secret-model"


def log(
    user,
    *,
    model="claude-haiku-4-5",
    at=None,
    cost="0.01",
    prompt=100,
    completion=50,
    status="ok",
    key=None,
    route="anthropic:claude-haiku-4-5",
    latency=300,
    error_code="",
):
    row = UsageLog.objects.create(
        user=user,
        api_key=key or user.key,
        request_id=f"req_{uuid.uuid4().hex}",
        model=model,
        route=route,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=Decimal(cost),
        latency_ms=latency,
        status=status,
        error_code=error_code,
    )
    if at is not None:
        UsageLog.objects.filter(pk=row.pk).update(created_at=at)
    return row


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def test_days_are_the_users_local_days(alice):
    tokyo = ZoneInfo("Asia/Tokyo")
    local_midnight = timezone.localtime(timezone.now(), tokyo).replace(
        hour=0, minute=30, second=0, microsecond=0
    )
    log(alice, at=local_midnight, cost="0.5")  # 00:30 in Tokyo is the previous day in UTC
    win = usage_stats.window(7, tokyo)

    [row] = usage_stats.daily_by_model(alice.pk, win, tokyo)
    [utc_row] = usage_stats.daily_by_model(alice.pk, usage_stats.window(7, ZoneInfo("UTC")), ZoneInfo("UTC"))

    assert row["day"] == local_midnight.date() and row["cost"] == Decimal("0.5") and row["requests"] == 1
    assert utc_row["day"] == local_midnight.date() - timedelta(days=1)


def test_daily_rows_are_grouped_by_model_and_summed_in_sql(alice, bob):
    now = timezone.now()
    log(alice, model="a", cost="0.10", prompt=10, completion=5)
    log(alice, model="a", cost="0.20", prompt=1, completion=1)
    log(alice, model="b", cost="0.05")
    log(alice, model="a", at=now - timedelta(days=40))  # outside a 30-day window
    log(bob, model=BOBS_MODEL)

    rows = usage_stats.daily_by_model(alice.pk, usage_stats.window(30, ZoneInfo("UTC")), ZoneInfo("UTC"))

    assert {(r["model"], r["cost"], r["tokens"], r["requests"]) for r in rows} == {
        ("a", Decimal("0.30"), 17, 2),
        ("b", Decimal("0.05"), 150, 1),
    }


def test_the_usage_page_draws_spend_and_token_charts_for_my_models(as_alice, alice, bob):
    for days_ago, model in [(0, "claude-haiku-4-5"), (1, "gpt-5.2"), (3, "claude-haiku-4-5")]:
        log(alice, model=model, at=timezone.now() - timedelta(days=days_ago))
    log(bob, model=BOBS_MODEL)

    html = as_alice.get("/usage/?range=7").content.decode()

    assert html.count('<svg class="chart"') == 2 and "Daily spend" in html and "Daily tokens" in html
    assert "claude-haiku-4-5" in html and "gpt-5.2" in html
    assert BOBS_MODEL not in html
    assert 'aria-current="true">7 days' in html


@pytest.mark.parametrize("value,expected", [("7", 7), ("90", 90), ("13", 30), ("x", 30), (None, 30)])
def test_the_range_is_one_of_7_30_90_days(as_alice, alice, value, expected):
    response = as_alice.get("/usage/", {"range": value} if value else {})
    assert response.status_code == 200 and f'aria-current="true">{expected} days' in response.content.decode()


def test_the_charts_fragment_is_returned_to_htmx(as_alice, alice):
    response = as_alice.get("/usage/?range=90", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="usage-charts")
    html = response.content.decode()
    assert html.startswith('<div id="usage-charts">') and "<html" not in html


def test_an_empty_period_says_so(as_alice, alice):
    html = as_alice.get("/usage/").content.decode()
    assert "No usage in this period yet" in html and "No requests match" in html


def test_the_table_filters_by_model_key_status_and_date(as_alice, alice):
    other_key = alice.api_keys.create(
        name="ci", key_hash=uuid.uuid4().hex * 2, prefix="gpuniq_ci00", last4="zzzz"
    )
    old = timezone.now() - timedelta(days=10)
    rows = {
        "haiku": log(alice, model="claude-haiku-4-5"),
        "gpt": log(alice, model="gpt-5.2", key=other_key),
        "failed": log(alice, model="gpt-5.2", status="error", error_code="upstream_timeout", cost="0"),
        "old": log(alice, model="claude-haiku-4-5", at=old),
    }

    def shown(query):
        html = as_alice.get("/usage/", query, **HTMX_TABLE).content.decode()
        assert html.startswith('<div id="usage-table">')
        return {name for name, row in rows.items() if row.request_id[:17] in html}

    assert shown({}) == set(rows)
    assert shown({"model": "gpt-5.2"}) == {"gpt", "failed"}
    assert shown({"key": other_key.pk}) == {"gpt"}
    assert shown({"status": "error"}) == {"failed"}
    day = timezone.localtime(old).date().isoformat()
    assert shown({"date_from": day, "date_to": day}) == {"old"}
    assert shown({"date_from": (timezone.localdate() - timedelta(days=1)).isoformat()}) == {
        "haiku",
        "gpt",
        "failed",
    }


def test_bobs_key_as_a_filter_is_ignored_and_never_shows_his_rows(as_alice, alice, bob):
    mine = log(alice)
    his = log(bob, model=BOBS_MODEL)
    html = as_alice.get("/usage/", {"key": bob.key.pk}, **HTMX_TABLE).content.decode()
    assert mine.request_id[:17] in html and his.request_id[:17] not in html and BOBS_MODEL not in html


def test_the_table_pages_through_older_requests(as_alice, alice):
    for _ in range(51):
        log(alice)
    first = as_alice.get("/usage/", **HTMX_TABLE).content.decode()
    second = as_alice.get("/usage/", {"page": 2}, **HTMX_TABLE).content.decode()
    assert "1–50 of 51" in first and "Older" in first
    assert "51–51 of 51" in second and "Newer" in second


async def test_csv_export_streams_my_filtered_rows_in_my_time_zone(async_client, alice, bob):
    from asgiref.sync import sync_to_async

    alice.time_zone = "America/New_York"
    await sync_to_async(alice.save)()
    await sync_to_async(log)(alice, model="gpt-5.2", cost="0.12345678")
    await sync_to_async(log)(alice, model="claude-haiku-4-5")
    await sync_to_async(log)(bob, model=BOBS_MODEL)
    await async_client.aforce_login(alice)

    response = await async_client.get("/usage/export.csv", {"model": "gpt-5.2"})
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="gpuniq-usage-')
    [header, row] = list(csv.reader(io.StringIO(body)))
    assert header[:3] == ["created_at", "request_id", "model"]
    assert row[2] == "gpt-5.2" and row[header.index("cost_usd")] == "0.12345678"
    assert datetime.fromisoformat(row[0]).utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
    assert BOBS_MODEL not in body


async def test_csv_export_covers_every_row_in_chunks(async_client, alice, monkeypatch):
    from asgiref.sync import sync_to_async

    from billing import usage_pages

    monkeypatch.setattr(usage_pages, "CSV_CHUNK", 3)
    created = {(await sync_to_async(log)(alice)).request_id for _ in range(8)}
    await async_client.aforce_login(alice)
    response = await async_client.get("/usage/export.csv")
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    ids = [line[1] for line in list(csv.reader(io.StringIO(body)))[1:]]
    assert len(ids) == 8 and set(ids) == created


def test_charts_give_the_top_six_models_a_colour_and_group_the_rest():
    day = timezone.localdate()
    rows = [{"day": day, "model": f"m{i}", "cost": Decimal(10 - i), "tokens": 1} for i in range(8)]
    chart = charts.stacked_daily("t", [day], rows, "cost")
    assert [name for _, name, _ in chart.legend] == ["m0", "m1", "m2", "m3", "m4", "m5", "other"]
    assert chart.legend[-1][2] == "$7.00" and chart.total == "$52.00"  # other = m6 (4) + m7 (3)
    assert len(chart.bars) == 7 and chart.grid[-1][1] == "$100"


@pytest.mark.parametrize(
    "value,expected", [(0.3, 0.5), (7, 10), (12, 20), (0.0004, 0.0005), (250, 250), (0, 1)]
)
def test_axis_maximum_is_a_round_number(value, expected):
    assert charts.nice_ceiling(value) == pytest.approx(expected)


@pytest.mark.parametrize("value,text", [(0, "$0"), (0.00123, "$0.0012"), (0.5, "$0.50"), (1234.5, "$1,235")])
def test_money_labels(value, text):
    assert charts.money(value) == text


def test_refused_calls_show_on_the_usage_page_as_failed(api_server, committed, vendors, client):
    import openai

    from ..conftest import make_user

    poor = make_user("poor", "0")
    api = openai.OpenAI(api_key=poor.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert refused.value.status_code == 402
    [row] = UsageLog.objects.filter(user=poor)
    assert (row.model, row.status, row.error_code, row.cost_usd) == (
        "gpt-4o",
        "error",
        "insufficient_balance",
        0,
    )
    client.force_login(poor)
    page = client.get("/usage/?status=error").content.decode()
    assert "1 failed (not charged)" in page and "insufficient_balance" in page


def test_the_dashboards_own_key_is_named_and_a_sub_millisecond_latency_reads_under_1_ms(as_alice, alice):
    from accounts.keys import dashboard_principal

    principal = dashboard_principal(alice)
    UsageLog.objects.create(
        user=alice, api_key_id=principal.key_id, request_id="req_web", model="gpt-4o", latency_ms=0
    )
    html = as_alice.get("/usage/").content.decode()
    row = html[html.index("req_web") - 1500 : html.index("req_web")]
    assert "Web dashboard" in row and "&lt;1 ms" in row and "gpuniq_" not in row.split("<tr>")[-1]


def test_the_period_buttons_carry_the_tables_filters(as_alice, alice):
    log(alice, model="gpt-4o")
    html = as_alice.get("/usage/?model=gpt-4o&status=ok&range=30").content.decode()
    assert 'href="?model=gpt-4o&amp;status=ok&amp;range=7"' in html
    assert 'hx-include="#usage-filters [data-filter]"' in html
    fragment = as_alice.get(
        "/usage/?model=gpt-4o&status=ok&range=7", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="usage-charts"
    ).content.decode()
    assert 'href="?model=gpt-4o&amp;status=ok&amp;range=90"' in fragment and "last 7 days" in fragment


def test_a_non_streamed_call_records_its_latency(api_server, committed, vendors, client):
    import openai

    from ..conftest import make_user

    tess = make_user("tess", "5")
    api = openai.OpenAI(api_key=tess.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    api.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "[[fault:slow_first_byte]] hi"}]
    )
    [row] = UsageLog.objects.filter(user=tess)
    assert row.status == "ok" and not row.stream and row.latency_ms >= vendors["openai"].slow_seconds * 1000
    client.force_login(tess)
    assert f"{row.latency_ms:,} ms" in client.get("/usage/").content.decode()
