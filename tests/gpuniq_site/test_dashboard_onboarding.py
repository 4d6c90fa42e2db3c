"""A new account: an onboarding card on the overview until it has a key, money and a first request,
and the configurable sign-up credit, posted once through the ledger."""

import re
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from accounts.models import User
from billing import ledger
from billing.models import LedgerEntry
from gpuniq_site.env import envdecimal


def sign_up(client) -> User:
    email = f"nina-{uuid.uuid4().hex[:6]}@example.com"
    response = client.post("/signup/", {"email": email, "password": "a-long password 9"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    return User.objects.get(email=email)


def test_no_sign_up_credit_by_default_and_the_card_says_the_balance_is_zero(client, committed):
    nina = sign_up(client)
    assert ledger.account_for_user(nina.pk).balance == 0
    assert not LedgerEntry.objects.filter(account__user=nina).exists()
    html = client.get("/dashboard/").content.decode()
    card = re.search(r'data-testid="onboarding".*?</section>', html, re.S).group(0)
    assert "Create an API key" in card and "Your balance is $0" in card and 'href="/keys/create"' in card


@override_settings(SIGNUP_CREDIT_USD=Decimal("2.50"))
def test_the_sign_up_credit_is_an_adjustment_posted_once_per_user(client, committed):
    from billing.signup_credit import credit_new_user

    nina = sign_up(client)
    credit_new_user(User, user=nina)  # a repeated signal moves nothing twice
    entries = list(LedgerEntry.objects.filter(account__user=nina))
    assert [(e.kind, e.amount, e.idempotency_key) for e in entries] == [
        (LedgerEntry.ADJUSTMENT, Decimal("2.5"), f"signup-credit:{nina.pk}")
    ]
    assert ledger.account_for_user(nina.pk).balance == Decimal("2.5")
    assert "Your $2.50 sign-up credit is ready to spend." in client.get("/dashboard/").content.decode()


def test_the_card_goes_once_the_first_steps_are_done(client, committed):
    from billing.models import UsageLog

    from ..conftest import make_user

    olga = make_user("olga", "5")
    client.force_login(olga)
    assert 'data-testid="onboarding"' in client.get("/dashboard/").content.decode()  # no request yet
    UsageLog.objects.create(user=olga, api_key=olga.key, request_id="req_first", model="gpt-4o")
    assert 'data-testid="onboarding"' not in client.get("/dashboard/").content.decode()


@pytest.mark.parametrize("raw", ["-1", "abc", "nan"])
def test_a_bad_sign_up_credit_stops_start_up(monkeypatch, raw):
    monkeypatch.setenv("SIGNUP_CREDIT_USD", raw)
    with pytest.raises(ImproperlyConfigured):
        envdecimal("SIGNUP_CREDIT_USD", "0")
