"""A key this process admitted moments ago has its hold sent while its admission is still on its way
(accounts.guard.key_required_overlapped). Whatever changed meanwhile, the admission answers first
and nothing is charged for a request it refuses: a key revoked, a burst past the rate limit, an
allow-list narrowed or a cap lowered since the last request. Real server, PostgreSQL and Redis."""

import asyncio
from decimal import Decimal

import httpx
import pytest

from accounts.keys import revoke_key, update_key
from billing import ledger
from billing.models import Account, Hold

from ..conftest import balance_of, make_user, usage_rows
from ..live import samples, value
from ..billing.test_money_attacks import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
CHAT = "/v1/openai/chat/completions"


def overlapped(base: str) -> float:
    return value(samples(base), "gpuniq_admissions_overlapped_total")


def chat(base: str, user, *, model: str = "gpt-4o", stream: bool = False, **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}
    return httpx.post(base + CHAT, json=body, headers={"Authorization": f"Bearer {user.raw_key}"}, timeout=30)


def settled_cleanly(user) -> bool:
    """No hold left open, nothing held, and the ledger agrees with the balances."""
    no_open = not Hold.objects.filter(account_id=user.account.pk, status=Hold.OPEN).exists()
    return no_open and Account.objects.get(pk=user.account.pk).held == 0


def warm(base: str, user) -> Decimal:
    """Two requests served: this server now remembers the key's principal. Returns the balance."""
    for _ in range(2):
        assert chat(base, user).status_code == 200
    wait_until(lambda: len(usage_rows(user)) == 2 and settled_cleanly(user), what="two settled requests")
    return balance_of(user)


def test_a_key_revoked_since_its_last_request_is_refused_and_its_hold_released(api_server, committed):
    rui = make_user("rui", "1")  # Rui: his key is revoked between two requests
    before = warm(api_server, rui)
    seen = overlapped(api_server)
    revoke_key(key=rui.key)

    for stream in (False, True):
        refused = chat(api_server, rui, stream=stream)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "revoked_api_key"
    assert overlapped(api_server) >= seen + 1  # the hold was sent before the admission answered
    wait_until(lambda: settled_cleanly(rui), what="the early holds released")
    assert balance_of(rui) == before
    assert len(usage_rows(rui)) == 2  # a refused key leaves no usage row, as before
    assert ledger.find_mismatches() == []


def test_a_burst_past_the_rate_limit_pays_only_for_what_was_served(api_server, committed):
    sol = make_user("sol", "1", rpm=4)  # Sol: 4 requests a minute, then a burst of 6 at once
    before = warm(api_server, sol)
    seen = overlapped(api_server)

    async def burst():
        auth = {"Authorization": f"Bearer {sol.raw_key}"}
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(client.post(api_server + CHAT, json=body, headers=auth) for _ in range(6))
            )

    answers = asyncio.run(burst())
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 429, 429, 429, 429], codes
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "4"
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "rate_limit_per_key"
    assert overlapped(api_server) >= seen + 1
    wait_until(lambda: len(usage_rows(sol)) == 4 and settled_cleanly(sol), what="the burst settled")
    served = [row for row in usage_rows(sol)[2:] if row.status == "ok"]
    assert len(served) == 2
    assert before - balance_of(sol) == sum(row.cost_usd for row in served)
    assert ledger.find_mismatches() == []


def test_an_allow_list_narrowed_since_the_last_request_applies_to_the_next(api_server, committed):
    tao = make_user("tao", "1")  # Tao: gpt-4o is taken off his key between two requests
    before = warm(api_server, tao)
    update_key(
        key=tao.key, name="narrowed", rpm=60, monthly_spend_cap_usd=None, allowed_models=["claude-haiku-4-5"]
    )

    seen = overlapped(api_server)
    refused = chat(api_server, tao)
    assert overlapped(api_server) >= seen + 1
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    wait_until(lambda: settled_cleanly(tao), what="the early hold released")
    rows = usage_rows(tao)
    assert [r.error_code for r in rows[2:]] == ["model_not_allowed"]  # logged once, not per attempt
    assert balance_of(tao) == before
    assert chat(api_server, tao, model="claude-haiku-4-5").status_code == 200


def test_a_cap_lowered_since_the_last_request_refuses_the_next(api_server, committed):
    uma = make_user("uma", "1")  # Uma: her key gets a cap below what she already spent this month
    before = warm(api_server, uma)
    update_key(
        key=uma.key, name="capped", rpm=60, monthly_spend_cap_usd=Decimal("0.00001"), allowed_models=[]
    )

    seen = overlapped(api_server)
    refused = chat(api_server, uma, stream=True)
    assert overlapped(api_server) >= seen + 1
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "spend_cap_reached"
    wait_until(lambda: settled_cleanly(uma), what="the early hold released")
    assert balance_of(uma) == before
    assert ledger.find_mismatches() == []


def test_a_bad_request_from_a_revoked_key_is_answered_as_revoked(api_server, committed):
    vic = make_user("vic", "1")  # Vic: revoked, then sends a request that is also malformed
    warm(api_server, vic)
    revoke_key(key=vic.key)
    refused = chat(api_server, vic, temperature="hot")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"


def test_an_admission_sent_early_survives_a_redis_that_forgot_its_scripts(api_server, committed):
    """Redis restarted (or SCRIPT FLUSH): the early EVALSHA answers NOSCRIPT, the admission is sent
    again in full, and the request is served and billed once."""
    import redis

    from django.conf import settings

    wen = make_user("wen", "1")  # Wen: Redis loses its scripts between her requests
    before = warm(api_server, wen)
    seen = overlapped(api_server)
    redis.Redis.from_url(settings.REDIS_URL).script_flush()

    served = chat(api_server, wen)
    assert served.status_code == 200, served.text
    assert overlapped(api_server) >= seen + 1
    wait_until(lambda: len(usage_rows(wen)) == 3 and settled_cleanly(wen), what="the request settled")
    assert before - balance_of(wen) == usage_rows(wen)[-1].cost_usd > 0
