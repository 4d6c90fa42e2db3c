"""API keys: created once, stored hashed, accepted in both headers, revoked at once."""

import hashlib

import pytest
from django.core.management import call_command

from accounts.keys import authenticate, create_key, revoke_key
from accounts.models import APIKey, User
from billing.models import Account, LedgerEntry
from gpuniq_site.db import run_db


@pytest.mark.django_db
def test_create_api_key_command_creates_user_credits_and_prints_key_last(capsys):
    call_command("create_api_key", "dora@example.com", "--credit", "5", "--name", "laptop", "--rpm", "30")
    raw = capsys.readouterr().out.strip().splitlines()[-1]

    assert raw.startswith("gpuniq_") and len(raw) >= len("gpuniq_") + 32
    user = User.objects.get(email="dora@example.com")
    key = APIKey.objects.get(user=user)
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(list(APIKey.objects.values()))  # only the hash is stored
    assert (key.name, key.rpm, key.last4) == ("laptop", 30, raw[-4:])
    assert Account.objects.get(user=user).balance == 5
    assert LedgerEntry.objects.get(account__user=user).kind == "adjustment"


@pytest.mark.django_db
def test_create_api_key_command_rejects_bad_credit():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", "erin@example.com", "--credit", "lots")
    assert not User.objects.filter(email="erin@example.com").exists()


@pytest.mark.django_db
def test_a_principal_names_the_billing_account_made_on_first_use():
    """accounts imports no billing: the account id comes through the lookup billing provides."""
    user = User.objects.create_user("fern@example.com")
    _key, raw = create_key(user=user)
    assert not Account.objects.filter(user=user).exists()

    principal = authenticate(raw)

    assert principal.account_id == Account.objects.get(user=user).pk


async def test_bearer_and_x_api_key_both_authenticate(async_client, alice):
    bearer = await async_client.get("/v1/llm/balance", headers={"Authorization": f"Bearer {alice.raw_key}"})
    header = await async_client.get("/v1/llm/balance", headers={"X-API-Key": alice.raw_key})
    assert bearer.status_code == header.status_code == 200
    assert bearer.json()["data"]["balance_usd"] == 10.0


@pytest.mark.parametrize(
    "headers,code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer gpuniq_" + "x" * 40}, "invalid_api_key"),
        ({"Authorization": "Bearer sk-not-ours"}, "invalid_api_key"),
        ({"X-API-Key": "gpuniq_short"}, "invalid_api_key"),
    ],
)
async def test_missing_or_malformed_keys_are_401_in_the_openai_envelope(
    async_client, committed, headers, code
):
    response = await async_client.get("/v1/openai/models", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["type"] == "authentication_error"
    assert response["x-request-id"] == body["request_id"]


async def test_revoked_key_is_refused_on_the_next_request(async_client, alice):
    headers = {"Authorization": f"Bearer {alice.raw_key}"}
    assert (await async_client.get("/v1/llm/balance", headers=headers)).status_code == 200  # now cached
    await run_db(revoke_key, key=alice.key)
    response = await async_client.get("/v1/llm/balance", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


def test_last_used_is_recorded_at_most_once_a_minute(client, alice):
    headers = {"HTTP_X_API_KEY": alice.raw_key}
    client.get("/v1/llm/balance", **headers)
    first = APIKey.objects.get(pk=alice.key.pk).last_used_at
    assert first is not None
    client.get("/v1/llm/balance", **headers)
    assert APIKey.objects.get(pk=alice.key.pk).last_used_at == first


@pytest.mark.parametrize(
    "headers, expected",
    [
        ([(b"authorization", b"Bearer  gpuniq_abc ")], "gpuniq_abc"),
        ([(b"authorization", b"bearer gpuniq_abc")], "gpuniq_abc"),
        ([(b"x-api-key", b" gpuniq_abc")], "gpuniq_abc"),
        ([(b"authorization", b"Basic dXNlcg=="), (b"x-api-key", b"gpuniq_abc")], "gpuniq_abc"),
        ([(b"authorization", b"Bearer ")], None),
        ([], None),
    ],
)
def test_the_hot_path_reads_the_key_from_both_headers_without_building_request_headers(headers, expected):
    import io

    from django.core.handlers.asgi import ASGIRequest

    from accounts.keys import extract_raw_key, request_raw_key

    scope = {"type": "http", "method": "POST", "path": "/v1/openai/chat/completions", "headers": headers}
    request = ASGIRequest(scope, io.BytesIO(b""))
    raw = request_raw_key(request)

    assert "headers" not in request.__dict__  # Django's HttpHeaders (a parse of every header) not built
    assert raw == expected == extract_raw_key(request.headers)
