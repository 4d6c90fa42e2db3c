"""Query values the database or Python's dates cannot take get the page's usual answer: a session id
with a NUL in it is an unknown session (PostgreSQL refuses NUL in text: it was a 500), and a date
filter at the end of the calendar (9999-12-31: the day after it overflowed) is no bound at all."""

from decimal import Decimal

import pytest

from billing import usage_stats
from billing.models import TopUp

from ..conftest import balance_of
from .test_dashboard_billing import as_alice, no_stripe  # noqa: F401 — fixtures
from .test_dashboard_usage import HTMX_TABLE, log


@pytest.mark.parametrize(
    "url",
    [
        "/billing/?checkout=success&session_id=%00",
        "/billing/?checkout=success&session_id=cs_test_a%00b",
        "/billing/history?session_id=%00",
        "/billing/history?session_id=cs_test_a%00b",
    ],
)
def test_a_nul_in_a_session_id_is_an_unknown_session(as_alice, alice, no_stripe, url):
    for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = as_alice.get(url, **extra)
        assert response.status_code == 200 and "Payment received" not in response.content.decode()
    assert balance_of(alice) == Decimal(10) and not TopUp.objects.filter(user=alice).exists()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
@pytest.mark.parametrize(
    "bounds",
    [{"date_to": "9999-12-31"}, {"date_from": "0001-01-01", "date_to": "9999-12-31"}],
    ids=["to", "both"],
)
def test_a_date_filter_at_the_ends_of_the_calendar_is_no_bound(as_alice, alice, zone, bounds):
    alice.time_zone = zone
    alice.save(update_fields=["time_zone"])
    mine = log(alice)
    response = as_alice.get("/usage/", bounds, **HTMX_TABLE)
    assert response.status_code == 200 and mine.request_id[:17] in response.content.decode()
    assert as_alice.get("/usage/", bounds).status_code == 200


async def test_the_csv_export_takes_a_date_filter_at_the_end_of_the_calendar(async_client, alice):
    from asgiref.sync import sync_to_async

    mine = await sync_to_async(log)(alice)
    await async_client.aforce_login(alice)
    response = await async_client.get("/usage/export.csv", {"date_to": "9999-12-31"})
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert response.status_code == 200 and mine.request_id in body


def test_the_bounds_kept_are_the_ones_every_zone_can_express(alice):
    from datetime import date
    from zoneinfo import ZoneInfo

    mine = log(alice)
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Manila"):
        rows = usage_stats.requests_for(
            alice.pk, zone=ZoneInfo(zone), date_from=usage_stats.FIRST_BOUND, date_to=usage_stats.LAST_BOUND
        )
        assert list(rows) == [mine]
        edge = usage_stats.requests_for(alice.pk, zone=ZoneInfo(zone), date_from=date.min, date_to=date.max)
        assert list(edge) == [mine]
