"""API-key pages: the key is shown once and stored hashed, limits apply at once, revoked keys are
refused by the API, and Bob's keys are invisible to Alice (404 on every route)."""

import hashlib
import re

import pytest

from accounts.keys import authenticate
from accounts.models import APIKey

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def raw_key_in(html: str) -> str:
    return re.search(r'data-testid="new-key">(gpuniq_[^<]+)<', html).group(1)


def test_the_keys_page_lists_only_my_keys(as_alice, alice, bob):
    html = as_alice.get("/keys/").content.decode()
    assert alice.key.display in html and alice.key.name in html
    assert bob.key.display not in html


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(as_alice, alice, client):
    response = as_alice.post(
        "/keys/create",
        {
            "name": "laptop",
            "rpm": "30",
            "monthly_spend_cap_usd": "12.50",
            "allowed_models": "claude-haiku-4-5, gpt-5.2",
        },
        **HTMX,
    )

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    raw = raw_key_in(html)
    # the dialog body (the key and a "Try it" line that can be pasted as is) plus the refreshed table
    assert html.count(raw) == 2 and f'-H "X-API-Key: {raw}"' in html and 'hx-swap-oob="true"' in html
    key = APIKey.objects.get(user=alice, name="laptop")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and key.last4 == raw[-4:]
    assert raw not in str(list(APIKey.objects.filter(pk=key.pk).values()))
    assert (key.rpm, str(key.monthly_spend_cap_usd), key.allowed_models) == (
        30,
        "12.50000000",
        ["claude-haiku-4-5", "gpt-5.2"],
    )
    assert raw not in as_alice.get("/keys/").content.decode()  # never shown again
    assert client.get("/v1/llm/balance", HTTP_X_API_KEY=raw).status_code == 200


def test_creating_a_key_without_htmx_renders_the_page_with_the_key(as_alice, alice):
    response = as_alice.post("/keys/create", {"name": "ci"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and "will not be shown again" in html
    key = APIKey.objects.get(user=alice, name="ci")
    assert key.key_hash == hashlib.sha256(raw_key_in(html).encode()).hexdigest()
    assert key.rpm == 120 and key.monthly_spend_cap_usd is None and key.allowed_models == []


def test_an_invalid_new_key_form_is_re_rendered_with_errors(as_alice, alice):
    before = alice.api_keys.count()
    response = as_alice.post(
        "/keys/create", {"name": " ", "rpm": "0", "allowed_models": "ok-model, bad slug!"}, **HTMX
    )
    html = response.content.decode()
    assert (
        response.status_code == 200
        and "This field is required" in html
        and "greater than or equal to 1" in html
    )
    assert "Not a model slug: slug!" in html
    assert alice.api_keys.count() == before


def test_editing_limits_updates_the_row_and_the_cached_principal(as_alice, alice):
    assert authenticate(alice.raw_key).rpm == 120  # now cached
    prefix = f"k{alice.key.pk}-"

    form = as_alice.get(f"/keys/{alice.key.pk}/edit", **HTMX)
    assert form.status_code == 200 and form.content.decode().startswith(f'<tr id="key-{alice.key.pk}"')
    response = as_alice.post(
        f"/keys/{alice.key.pk}/edit",
        {
            prefix + "name": "renamed",
            prefix + "rpm": "7",
            prefix + "monthly_spend_cap_usd": "3",
            prefix + "allowed_models": "claude-haiku-4-5",
        },
        **HTMX,
    )

    assert response.status_code == 200 and "Saved" in response.content.decode()
    key = APIKey.objects.get(pk=alice.key.pk)
    assert (key.name, key.rpm, key.allowed_models) == ("renamed", 7, ["claude-haiku-4-5"])
    principal = authenticate(alice.raw_key)
    assert (principal.rpm, principal.spend_cap_usd, principal.allowed_models) == (7, 3, ("claude-haiku-4-5",))


def test_an_invalid_edit_keeps_the_old_limits(as_alice, alice):
    prefix = f"k{alice.key.pk}-"
    response = as_alice.post(
        f"/keys/{alice.key.pk}/edit", {prefix + "name": "x", prefix + "rpm": "-3"}, **HTMX
    )
    assert response.status_code == 200 and 'class="edit-row"' in response.content.decode()
    assert APIKey.objects.get(pk=alice.key.pk).rpm == 120


def test_editing_without_htmx_uses_a_page_and_redirects(as_alice, alice):
    assert "<html" in as_alice.get(f"/keys/{alice.key.pk}/edit").content.decode()
    prefix = f"k{alice.key.pk}-"
    response = as_alice.post(f"/keys/{alice.key.pk}/edit", {prefix + "name": "paged", prefix + "rpm": "60"})
    assert response.status_code == 302 and response["Location"] == "/keys/"
    assert APIKey.objects.get(pk=alice.key.pk).rpm == 60


def test_cancelling_an_edit_returns_the_row(as_alice, alice):
    response = as_alice.get(f"/keys/{alice.key.pk}/row", **HTMX)
    assert response.status_code == 200 and alice.key.display in response.content.decode()


def test_revoking_a_key_makes_the_api_refuse_it(as_alice, alice, client):
    assert client.get("/v1/llm/balance", HTTP_X_API_KEY=alice.raw_key).status_code == 200  # cached now

    response = as_alice.post(f"/keys/{alice.key.pk}/revoke", **HTMX)

    assert response.status_code == 200 and "revoked" in response.content.decode()
    assert APIKey.objects.get(pk=alice.key.pk).revoked_at is not None
    refused = client.get("/v1/llm/balance", HTTP_X_API_KEY=alice.raw_key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"
    assert as_alice.get(f"/keys/{alice.key.pk}/edit").status_code == 404  # revoked keys are not editable


def test_revoking_without_htmx_asks_first(as_alice, alice):
    confirm = as_alice.get(f"/keys/{alice.key.pk}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert APIKey.objects.get(pk=alice.key.pk).revoked_at is None
    response = as_alice.post(f"/keys/{alice.key.pk}/revoke")
    assert response.status_code == 302 and APIKey.objects.get(pk=alice.key.pk).revoked_at is not None


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/keys/{pk}/edit"),
        ("post", "/keys/{pk}/edit"),
        ("get", "/keys/{pk}/row"),
        ("get", "/keys/{pk}/revoke"),
        ("post", "/keys/{pk}/revoke"),
    ],
)
def test_bobs_keys_are_404_to_alice(as_alice, bob, client, method, path):
    response = getattr(as_alice, method)(path.format(pk=bob.key.pk), {f"k{bob.key.pk}-name": "pwned"}, **HTMX)
    assert response.status_code == 404
    key = APIKey.objects.get(pk=bob.key.pk)
    assert key.revoked_at is None and key.name == "default"
    assert client.get("/v1/llm/balance", HTTP_X_API_KEY=bob.raw_key).status_code == 200


def test_key_routes_refuse_the_wrong_method(as_alice, alice):
    assert as_alice.delete("/keys/create").status_code == 405  # GET is the form page
    assert as_alice.post("/keys/").status_code == 405


def test_live_keys_are_listed_before_revoked_ones(as_alice, alice):
    from accounts.keys import create_key, revoke_key

    old, _ = create_key(user=alice, name="old-one")
    revoke_key(key=old)
    html = as_alice.get("/keys/").content.decode()
    assert html.index(f'id="key-{alice.key.pk}"') < html.index(f'id="key-{old.pk}"')


def test_the_create_link_opens_a_plain_form_page_that_posts_without_javascript(as_alice, alice):
    page = as_alice.get("/keys/").content.decode()
    assert re.search(r'<a class="btn btn-primary" href="/keys/create" data-open-dialog="key-dialog"', page)
    form = as_alice.get("/keys/create").content.decode()
    assert '<form method="post" action="/keys/create"' in form and "<html" in form
    name = re.search(r'<input[^>]*name="name"[^>]*>', form).group(0)
    assert (
        "value=" not in name and 'placeholder="e.g. laptop, CI, production"' in name
    )  # typing gives "laptop"
    created = as_alice.post(
        "/keys/create", {"name": "laptop", "rpm": "", "monthly_spend_cap_usd": "", "allowed_models": ""}
    )
    assert created.status_code == 200 and "will not be shown again" in created.content.decode()
    assert APIKey.objects.filter(user=alice, name="laptop").count() == 1
    refused = as_alice.post("/keys/create", {"name": ""})
    assert refused.status_code == 200 and "This field is required." in refused.content.decode()


def test_each_key_shows_what_it_spent_this_month_against_its_cap(as_alice, alice):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from accounts.keys import month_start
    from billing.models import UsageLog

    APIKey.objects.filter(pk=alice.key.pk).update(monthly_spend_cap_usd=Decimal("20"))
    for cost, when in [
        ("1.25", timezone.now()),
        ("2.50", timezone.now()),
        ("9", month_start() - timedelta(seconds=1)),
    ]:  # last month's does not count
        row = UsageLog.objects.create(
            user=alice, api_key=alice.key, request_id=f"req_{cost}", model="gpt-4o", cost_usd=Decimal(cost)
        )
        UsageLog.objects.filter(pk=row.pk).update(created_at=when)
    html = as_alice.get("/keys/").content.decode()
    cell = re.search(r'<td class="num nowrap" data-month-spend>(.*?)</td>', html, re.S).group(1)
    assert re.sub(r"<[^>]+>|\s+", " ", cell).split() == ["$3.75", "/", "$20.00"]
