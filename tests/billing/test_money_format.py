"""Money is printed as money everywhere, through one formatter (billing.money.format_usd): error
messages (a 402 once said "available $0E-8"), pages and labels (issue 12 §7)."""

from decimal import Decimal

import httpx
import pytest
from django.template import Context, Template

from billing.money import format_usd
from gpuniq_site.errors import ApiError

from ..conftest import make_user


@pytest.mark.parametrize(
    "value, places, text",
    [
        (Decimal("0E-8"), None, "$0.00"),
        (Decimal("-0E-8"), None, "$0.00"),
        (0, None, "$0.00"),
        (Decimal("1.26000000"), None, "$1.26"),
        (Decimal("0.00180000"), None, "$0.0018"),
        (Decimal("0.00000001"), None, "$0.00000001"),
        (Decimal("1234.5"), None, "$1,234.50"),
        (Decimal("-0.5"), None, "-$0.50"),
        ("0.405", None, "$0.405"),
        (10, None, "$10.00"),
        (Decimal("1.2599955"), 2, "$1.26"),
        (Decimal("0.005"), 2, "$0.01"),
        (Decimal("5"), 2, "$5.00"),
        (Decimal("1234.5"), 0, "$1,235"),
        (0.1, None, "$0.10"),
    ],
)
def test_format_usd(value, places, text):
    assert format_usd(value, places) == text


def test_templates_have_the_usd_filter_without_loading_it():
    rendered = Template("{{ a|usd }} {{ b|usd:2 }} {{ c|usd }}").render(
        Context({"a": Decimal("0E-8"), "b": Decimal("12.345"), "c": None})
    )
    assert rendered == "$0.00 $12.35 "


def test_no_error_message_prints_a_raw_decimal():
    error = ApiError(
        "insufficient_balance",
        required=format_usd(Decimal("0.00180000")),
        available=format_usd(Decimal("0E-8")),
    )
    assert error.message == "Insufficient balance: this request may cost up to $0.0018, available $0.00."
    assert ApiError("spend_cap_reached", cap=format_usd(Decimal("0.05"))).message.endswith(
        "spend cap of $0.05."
    )


def test_a_402_prints_money_as_money(api_server, committed):
    zoe = make_user("zoe", "0")  # Zoe: no credit at all
    response = httpx.post(
        f"{api_server}/v1/openai/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {zoe.raw_key}"},
        json={"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 402
    message = response.json()["error"]["message"]
    assert message.startswith("Insufficient balance: this request may cost up to $0.00")
    assert message.endswith(", available $0.00.") and "E-" not in message


def test_a_video_kickoff_402_prints_money_as_money(api_server, committed):
    zoe = make_user("zoe", "0.1")
    response = httpx.post(
        f"{api_server}/v1/llm/videos/jobs",
        headers={"X-API-Key": zoe.raw_key},
        timeout=30,
        json={"model": "kling-2-6", "prompt": "a fox", "duration": 10, "audio": True},
    )
    assert response.status_code == 402, response.text
    assert response.json()["error"]["message"] == (
        "Insufficient balance: this request may cost up to $1.26, available $0.10."
    )
