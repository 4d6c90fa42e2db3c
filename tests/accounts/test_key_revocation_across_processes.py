"""A key revoked in another process (here: this test process, as `manage.py shell` would) stops
working in the server at once, also on the embedded default where each process caches principals
in its own memory (no Redis)."""

import httpx
import pytest

from accounts.keys import revoke_key, update_key

from ..conftest import make_user, service_extra_env
from ..live import LiveServer


@pytest.fixture(scope="module")
def embedded_server(catalog_loaded, fake_vendors):
    """The API server without Redis: principals cached in process memory, as under `make run`."""
    env = {**service_extra_env(fake_vendors), "REDIS_URL": "", "CELERY_BROKER_URL": "memory://"}
    server = LiveServer(env=env).start()
    yield server.url
    server.stop()


def models(server: str, key: str) -> httpx.Response:
    return httpx.get(f"{server}/v1/openai/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_a_key_revoked_in_another_process_is_refused_at_once(embedded_server, committed):
    hana = make_user("hana", "1")  # Hana: one key, revoked from outside the server
    assert models(embedded_server, hana.raw_key).status_code == 200  # the server caches her principal
    assert models(embedded_server, hana.raw_key).status_code == 200

    revoke_key(key=hana.key)

    refused = models(embedded_server, hana.raw_key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"


def test_new_limits_set_in_another_process_apply_at_once(embedded_server, committed):
    ivan = make_user("ivan", "1")  # Ivan: his allow-list is narrowed from outside the server
    assert len(models(embedded_server, ivan.raw_key).json()["data"]) > 2
    update_key(key=ivan.key, name="narrowed", rpm=60, monthly_spend_cap_usd=None, allowed_models=["gpt-4o"])
    assert [m["id"] for m in models(embedded_server, ivan.raw_key).json()["data"]] == ["gpt-4o"]


def test_a_key_saved_revoked_in_a_shell_is_refused_at_once(embedded_server, committed):
    """What an operator types in `manage.py shell` (or Django admin's change form does): the model
    saved, not keys.revoke_key."""
    from django.utils import timezone

    jun = make_user("jun", "1")  # Jun: his key is revoked by hand
    assert models(embedded_server, jun.raw_key).status_code == 200
    jun.key.revoked_at = timezone.now()
    jun.key.save()
    refused = models(embedded_server, jun.raw_key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"


def test_a_key_edited_in_admin_applies_at_once(embedded_server, committed):
    kai = make_user("kai", "1")  # Kai: his allow-list is narrowed in Django admin's change form
    assert len(models(embedded_server, kai.raw_key).json()["data"]) > 2
    kai.key.allowed_models = ["gpt-4o"]
    kai.key.save()
    assert [m["id"] for m in models(embedded_server, kai.raw_key).json()["data"]] == ["gpt-4o"]


def test_a_deactivated_user_is_refused_at_once(embedded_server, committed):
    lou = make_user("lou", "1")  # Lou: deactivated by an operator
    assert models(embedded_server, lou.raw_key).status_code == 200
    lou.is_active = False
    lou.save()
    refused = models(embedded_server, lou.raw_key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
