"""Image turns in persistent chats (POST /v1/llm/chats/{id}/messages with a Nano Banana model, then
GET /v1/llm/chats/{id}/image-jobs/{job_id}) over a socket, on a real Celery worker and the media
fakes: the placeholder lives in the history from the kickoff, the first poll of the end rewrites it
(charged once, or failed and free), then the poll is 404 and the history is the truth; later text
turns see the image turn as "[image generated: <prompt>]"; other users see nothing."""

import asyncio
import base64
import io
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from PIL import Image

from billing import ledger
from billing.models import Hold, LedgerEntry
from llm.models import ChatMessage
from media_jobs.models import MediaAsset, MediaJob

from ..conftest import balance_of, make_user, native_client, service_extra_env, usage_rows
from tests.media_jobs.test_media_docs_snippets import run_snippet

NANO, NANO_PRO = Decimal("0.0312"), Decimal("0.1072")
GPT4O_IN, GPT4O_OUT = Decimal("2.00"), Decimal("8.00")  # catalog price per 1M tokens

# The docs' "Generating an image inside a chat session" snippet, verbatim but for the indentation the
# reference text lost (base URL, key, sleep and the example chat id are substituted when it runs).
DOCS_SNIPPET = """
import time, requests
BASE = "https://api.gpuniq.com/v1/llm"
HEADERS = {"X-API-Key": "gpuniq_your_key"}
chat_id = 42 # existing chat created via POST /v1/llm/chats
# 1. Kickoff (POST /chats/{id}/messages with an image model)
start = requests.post(
f"{BASE}/chats/{chat_id}/messages",
headers=HEADERS,
json={"model": "nano-banana-pro", "message": "a cozy cabin at sunrise"},
).json()
job_id = start["data"]["job_id"]
dialogue_id = start["data"]["dialogue_id"]
# 2. Poll — same 5-minute budget as the standalone /images/jobs flow
deadline = time.time() + 300
while time.time() < deadline:
    time.sleep(2.5)
    r = requests.get(
    f"{BASE}/chats/{chat_id}/image-jobs/{job_id}", headers=HEADERS,
    ).json()
    d = r["data"]
    if d["status"] == "completed":
        image_b64 = d["image"]["b64_json"]
        print(f"Cost: ${d['cost_usd']}, balance: ${d['balance_usd']}")
        break
    if d["status"] == "failed":
        print("failed:", d.get("error"))
        break
"""


def new_chat(client, **fields) -> dict:
    r = client.post("/chats", json={"model": "gpt-4o", "title": "Pictures", **fields})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def kickoff(client, chat_id: int, message: str, model: str = "nano-banana-pro", headers=None, **extra):
    return client.post(
        f"/chats/{chat_id}/messages",
        json={"model": model, "message": message, **extra},
        headers=headers or {},
    )


def poll(client, chat_id: int, job_id: str) -> httpx.Response:
    return client.get(f"/chats/{chat_id}/image-jobs/{job_id}")


def wait_terminal(job_id: str, timeout: float = 20.0) -> MediaJob:
    """Watch the job row (the truth): the API's polls are coalesced."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = MediaJob.objects.get(pk=job_id)
        if job.is_terminal:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status}")


def poll_until_terminal(client, chat_id: int, job_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = poll(client, chat_id, job_id)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if data["status"] in ("completed", "failed"):
            return data
        time.sleep(0.15)
    raise AssertionError(f"job {job_id} did not end")


def assert_gone(client, chat_id: int, job_id: str) -> None:
    r = poll(client, chat_id, job_id)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "job_not_found"), r.text


def charges(user) -> int:
    return LedgerEntry.objects.filter(account=user.account, kind="charge").count()


def books_clean(user):
    assert ledger.find_mismatches() == []
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def chat_cost(prompt: int, completion: int) -> Decimal:
    return (prompt * GPT4O_IN + completion * GPT4O_OUT) / 1_000_000


def test_kickoff_answers_image_pending_with_the_placeholder_in_the_history(
    as_alice, alice, celery_worker_proc, vendors
):
    chat = new_chat(as_alice)
    started = time.perf_counter()
    r = kickoff(as_alice, chat["id"], "a cozy cabin at sunrise")
    elapsed = time.perf_counter() - started

    assert r.status_code == 202, r.text
    data = r.json()["data"]
    assert data["type"] == "image_pending" and re.fullmatch(r"img_[0-9a-f]{20}", data["job_id"])
    assert (data["status"], data["model"], data["estimated_cost_usd"], data["chat_id"]) == (
        "pending",
        "nano-banana-pro",
        0.1072,
        chat["id"],
    )
    assert elapsed < 1.0
    user_turn, placeholder = as_alice.get(f"/chats/{chat['id']}").json()["data"]["messages"]
    assert (
        user_turn["id"],
        user_turn["role"],
        user_turn["kind"],
        user_turn["content"],
        user_turn["cost_usd"],
    ) == (data["user_message_id"], "user", "text", "a cozy cabin at sunrise", 0)
    assert (placeholder["id"], placeholder["role"], placeholder["kind"], placeholder["status"]) == (
        data["dialogue_id"],
        "assistant",
        "image",
        "pending",
    )
    assert (placeholder["job_id"], placeholder["image"], placeholder["error"], placeholder["cost_usd"]) == (
        data["job_id"],
        None,
        None,
        0,
    )
    assert placeholder["content"] == "[image generation pending: a cozy cabin at sunrise]"
    job = MediaJob.objects.get(pk=data["job_id"])
    assert (job.user_id, job.model, job.request["prompt"]) == (
        alice.pk,
        "nano-banana-pro",
        "a cozy cabin at sunrise",
    )
    assert Hold.objects.get(pk=job.hold_id).status == Hold.OPEN and balance_of(alice) == Decimal("10")

    poll_until_terminal(as_alice, chat["id"], data["job_id"])
    books_clean(alice)


def test_polling_to_completion_rewrites_the_placeholder_and_charges_once(
    api_server, as_alice, alice, celery_worker_proc, vendors
):
    chat = new_chat(as_alice)
    prompt = "a lighthouse at dusk [[fault:slow]]"  # the first route takes a second
    start = kickoff(as_alice, chat["id"], prompt).json()["data"]
    job_id, dialogue_id = start["job_id"], start["dialogue_id"]

    first = poll(as_alice, chat["id"], job_id).json()["data"]
    assert first["status"] in ("pending", "running") and "image" not in first and "cost_usd" not in first
    assert (first["job_id"], first["dialogue_id"], first["chat_id"]) == (job_id, dialogue_id, chat["id"])
    done = poll_until_terminal(as_alice, chat["id"], job_id)
    assert (done["status"], done["dialogue_id"], done["cost_usd"]) == ("completed", dialogue_id, 0.1072)
    raw = base64.b64decode(done["image"]["b64_json"])
    assert Image.open(io.BytesIO(raw)).format == "PNG" and done["image"]["mime_type"] == "image/png"
    assert Decimal(str(done["balance_usd"])) == Decimal("10") - NANO_PRO == balance_of(alice)
    assert_gone(as_alice, chat["id"], job_id)

    job = MediaJob.objects.get(pk=job_id)
    placeholder = ChatMessage.objects.get(pk=dialogue_id)
    assert (placeholder.status, placeholder.cost_usd, placeholder.error) == ("completed", NANO_PRO, None)
    assert placeholder.content == f"[image generated: {prompt}]"
    assert placeholder.image == {
        "asset_id": job.result["asset_id"],
        "path": job.result["path"],
        "mime_type": "image/png",
    }
    assert MediaAsset.objects.get(pk=placeholder.image["asset_id"]).user_id == alice.pk
    # the same job through the image-jobs API: no second charge
    same = httpx.get(f"{api_server}/v1/llm/images/jobs/{job_id}", headers={"X-API-Key": alice.raw_key}).json()
    assert same["data"]["cost_usd"] == 0.1072
    assert charges(alice) == 1 and balance_of(alice) == Decimal("10") - NANO_PRO
    [row] = usage_rows(alice)
    assert (row.endpoint, row.model, row.images, row.cost_usd) == (
        "image_job",
        "nano-banana-pro",
        1,
        NANO_PRO,
    )
    books_clean(alice)

    turn = as_alice.get(f"/chats/{chat['id']}").json()["data"]["messages"][1]
    assert (turn["kind"], turn["status"], turn["cost_usd"], turn["job_id"]) == (
        "image",
        "completed",
        0.1072,
        job_id,
    )
    assert turn["image"]["url"].startswith(f"{api_server}/v1/llm/media/") and "path" not in turn["image"]
    assert httpx.get(turn["image"]["url"]).content == raw


def test_concurrent_polls_of_the_completion_charge_once(api_server, celery_worker_proc, committed, vendors):
    iris = make_user("iris", "5", rpm=2000)  # polls a lot
    with native_client(api_server, iris) as client:
        chat = new_chat(client)
        job_id = kickoff(client, chat["id"], "many eyes", model="nano-banana").json()["data"]["job_id"]
    wait_terminal(job_id)

    async def hammer():
        async with httpx.AsyncClient(
            base_url=f"{api_server}/v1/llm",
            headers={"X-API-Key": iris.raw_key},
            timeout=30,
            limits=httpx.Limits(max_connections=40),
        ) as http:
            return await asyncio.gather(
                *(http.get(f"/chats/{chat['id']}/image-jobs/{job_id}") for _ in range(40))
            )

    replies = asyncio.run(hammer())
    assert {r.status_code for r in replies} <= {200, 404}
    delivered = [r.json()["data"] for r in replies if r.status_code == 200]
    assert delivered and all((d["status"], d["cost_usd"]) == ("completed", 0.0312) for d in delivered)
    assert all(r.json()["error"]["code"] == "job_not_found" for r in replies if r.status_code == 404)
    assert charges(iris) == 1 and balance_of(iris) == Decimal("5") - NANO and len(usage_rows(iris)) == 1
    assert ChatMessage.objects.get(job_id=job_id).status == "completed"
    with native_client(api_server, iris) as client:
        assert_gone(client, chat["id"], job_id)
    books_clean(iris)


def test_a_failed_job_marks_the_placeholder_failed_and_charges_nothing(
    as_alice, alice, celery_worker_proc, vendors
):
    chat = new_chat(as_alice)
    prompt = "[[fault:500]] a cabin every vendor refuses"  # every route answers 500
    start = kickoff(as_alice, chat["id"], prompt, model="nano-banana").json()["data"]
    job = wait_terminal(start["job_id"])
    assert job.status == "failed"

    failed = poll_until_terminal(as_alice, chat["id"], start["job_id"])
    assert (failed["status"], failed["dialogue_id"], failed["error"]) == (
        "failed",
        start["dialogue_id"],
        job.error,
    )
    assert (
        failed["error"]["code"] == "all_routes_failed" and "image" not in failed and "cost_usd" not in failed
    )
    assert_gone(as_alice, chat["id"], start["job_id"])
    placeholder = ChatMessage.objects.get(pk=start["dialogue_id"])
    assert (placeholder.status, placeholder.error, placeholder.image, placeholder.cost_usd) == (
        "failed",
        job.error,
        None,
        0,
    )
    assert placeholder.content == f"[image generation failed: {prompt}]"
    assert all(vendors[name].requests for name in ("gemini_images", "fal", "fallback_images"))
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED
    assert balance_of(alice) == Decimal("10") and charges(alice) == 0
    assert [(r.endpoint, r.status, r.cost_usd) for r in usage_rows(alice)] == [("image_job", "error", 0)]
    turn = as_alice.get(f"/chats/{chat['id']}").json()["data"]["messages"][1]
    assert (turn["status"], turn["error"]["code"], turn["image"], turn["cost_usd"]) == (
        "failed",
        "all_routes_failed",
        None,
        0,
    )
    books_clean(alice)


def test_another_users_chat_and_job_are_404(as_alice, as_bob, alice, bob, celery_worker_proc, vendors):
    bobs = new_chat(as_bob)
    job_id = kickoff(as_bob, bobs["id"], "bob's private cabin", model="nano-banana").json()["data"]["job_id"]
    alices = new_chat(as_alice)
    wait_terminal(job_id)

    for r, code in [
        (poll(as_alice, bobs["id"], job_id), "chat_not_found"),
        (poll(as_alice, alices["id"], job_id), "job_not_found"),
        (as_alice.get(f"/images/jobs/{job_id}"), "job_not_found"),
        (kickoff(as_alice, bobs["id"], "let me in", model="nano-banana"), "chat_not_found"),
        (poll(as_alice, alices["id"], "img_" + "0" * 20), "job_not_found"),
    ]:
        assert (r.status_code, r.json()["error"]["code"]) == (404, code), r.text
    assert not MediaJob.objects.filter(user_id=alice.pk).exists() and not usage_rows(alice)
    assert (
        balance_of(alice) == Decimal("10") and not ChatMessage.objects.filter(chat_id=alices["id"]).exists()
    )
    assert ChatMessage.objects.get(job_id=job_id).status == "pending"  # Alice's polls moved nothing
    done = poll_until_terminal(as_bob, bobs["id"], job_id)
    assert done["status"] == "completed" and balance_of(bob) == Decimal("10") - NANO
    books_clean(bob)


def test_the_image_turn_survives_a_restart_and_later_text_turns_see_its_stand_in(
    api_server, alice, fake_vendors, vendors, celery_worker_proc
):
    from ..live import LiveServer

    with native_client(api_server, alice) as client:
        chat = new_chat(client)
        client.post(f"/chats/{chat['id']}/messages", json={"message": "Hello there"})
        start = kickoff(client, chat["id"], "a red fox in snow", model="nano-banana").json()["data"]
        done = poll_until_terminal(client, chat["id"], start["job_id"])
    second = LiveServer(env=service_extra_env(fake_vendors)).start()
    try:
        with native_client(second.url, alice) as client:
            messages = client.get(f"/chats/{chat['id']}").json()["data"]["messages"]
            assert [(m["role"], m["kind"], m["status"], m["content"]) for m in messages] == [
                ("user", "text", "completed", "Hello there"),
                ("assistant", "text", "completed", "Echo: Hello there"),
                ("user", "text", "completed", "a red fox in snow"),
                ("assistant", "image", "completed", "[image generated: a red fox in snow]"),
            ]
            image_turn = messages[3]
            assert (image_turn["id"], image_turn["job_id"], image_turn["cost_usd"]) == (
                start["dialogue_id"],
                start["job_id"],
                0.0312,
            )
            assert httpx.get(image_turn["image"]["url"]).content == base64.b64decode(
                done["image"]["b64_json"]
            )
            assert_gone(client, chat["id"], start["job_id"])
            reply = client.post(f"/chats/{chat['id']}/messages", json={"message": "Describe it"})
            assert reply.status_code == 200, reply.text
    finally:
        second.stop()
    assert vendors["openai"].requests[-1]["json"]["messages"] == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Echo: Hello there"},
        {"role": "user", "content": "a red fox in snow"},
        {"role": "assistant", "content": "[image generated: a red fox in snow]"},
        {"role": "user", "content": "Describe it"},
    ]
    assert reply.json()["data"]["content"] == "Echo: Describe it"
    assert ChatMessage.objects.filter(chat_id=chat["id"]).count() == 6
    spent = sum(r.cost_usd for r in usage_rows(alice))
    assert [r.endpoint for r in usage_rows(alice)] == ["chat_session", "image_job", "chat_session"]
    assert balance_of(alice) == Decimal("10") - spent and NANO + chat_cost(5, 3) < spent
    books_clean(alice)


def test_image_turns_take_only_the_image_jobs_models_and_image_options(as_alice, alice, api_server, vendors):
    chat = new_chat(as_alice)
    cases = [
        ({"model": "flux-2-pro"}, 400, "wrong_model_kind", "model"),
        ({"model": "kling-2-6"}, 400, "wrong_model_kind", None),
        ({"model": "nano-banana", "stream": True}, 400, "unsupported_parameter", "stream"),
        ({"model": "nano-banana", "temperature": 0.5}, 400, "unsupported_parameter", "temperature"),
        ({"model": "nano-banana", "max_tokens": 100}, 400, "unsupported_parameter", "max_tokens"),
        ({"model": "nano-banana", "message": "x" * 4001}, 400, "invalid_parameter", "message"),
        ({"model": "nano-banana", "size": "huge"}, 400, "invalid_parameter", "size"),
        ({"model": "nano-banana", "output_format": "gif"}, 400, "invalid_parameter", "output_format"),
        ({"model": "nano-banana-pro", "size": "4096x4096"}, 400, "unsupported_parameter", "size"),  # 4K
    ]
    for extra, status, code, field in cases:
        r = as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "a cat", **extra})
        error = r.json()["error"]
        assert (r.status_code, error["code"]) == (status, code), (extra, r.text)
        assert field is None or error["meta"]["field"] == field, (extra, error)
    broke = make_user("broke", "0.01")
    with native_client(api_server, broke) as client:
        theirs = new_chat(client)
        r = kickoff(client, theirs["id"], "too dear")
        assert (r.status_code, r.json()["error"]["code"]) == (402, "insufficient_balance")
        assert not ChatMessage.objects.filter(chat_id=theirs["id"]).exists()
    assert not ChatMessage.objects.filter(chat_id=chat["id"]).exists()
    assert not MediaJob.objects.filter(user_id__in=(alice.pk, broke.pk)).exists()
    assert not Hold.objects.filter(account__in=(alice.account, broke.account)).exists()


def test_an_idempotency_key_replays_the_kickoff(as_alice, alice, celery_worker_proc, vendors):
    chat, other = new_chat(as_alice), new_chat(as_alice)
    key = {"Idempotency-Key": "fox-1"}
    first = kickoff(as_alice, chat["id"], "a fox", model="nano-banana", headers=key)
    again = kickoff(as_alice, chat["id"], "a fox", model="nano-banana", headers=key)
    assert (first.status_code, again.status_code) == (202, 202) and first.json()["data"] == again.json()[
        "data"
    ]
    changed = kickoff(as_alice, chat["id"], "a wolf", model="nano-banana", headers=key)
    assert (changed.status_code, changed.json()["error"]["code"]) == (409, "idempotency_conflict")
    elsewhere = kickoff(as_alice, other["id"], "a fox", model="nano-banana", headers=key).json()["data"]
    assert elsewhere["job_id"] != first.json()["data"]["job_id"]  # keys are per chat
    assert ChatMessage.objects.filter(chat_id=chat["id"]).count() == 2
    assert MediaJob.objects.filter(user_id=alice.pk).count() == 2
    for chat_id, data in ((chat["id"], first.json()["data"]), (other["id"], elsewhere)):
        poll_until_terminal(as_alice, chat_id, data["job_id"])
    assert charges(alice) == 2 and balance_of(alice) == Decimal("10") - 2 * NANO
    books_clean(alice)


def test_the_docs_snippet_runs_as_written(api_server, celery_worker_proc, committed, vendors):
    nina = make_user("nina", "5")  # follows the docs to the letter
    with native_client(api_server, nina) as client:
        chat = new_chat(client)
    code = DOCS_SNIPPET.replace("chat_id = 42", f"chat_id = {chat['id']}")
    assert run_snippet(code, api_server, nina) == "Cost: $0.1072, balance: $4.8928\n"
    assert balance_of(nina) == Decimal("4.8928")
    turn = ChatMessage.objects.filter(chat_id=chat["id"]).last()
    assert (turn.kind, turn.status, turn.cost_usd) == ("image", "completed", NANO_PRO)
    books_clean(nina)


def test_the_sdk_generates_a_chat_image(api_server, alice, celery_worker_proc, vendors):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))
    from gpuniq import GPUniq
    from gpuniq.errors import JobFailedError, NotFoundError

    with GPUniq(api_key=alice.raw_key, base_url=api_server) as sdk:
        chat = sdk.llm.create_chat_session(model="gpt-4o")
        done = sdk.llm.generate_chat_image(chat["id"], "nano-banana", "a paper boat", poll_interval=0.2)
        assert done["status"] == "completed" and done["image"]["b64_json"] and done["cost_usd"] == 0.0312
        with pytest.raises(NotFoundError):
            sdk.llm.get_chat_image_job(chat["id"], done["job_id"])
        with pytest.raises(JobFailedError) as failed:
            sdk.llm.generate_chat_image(
                chat["id"], "nano-banana", "no [[fault:content_policy]]", poll_interval=0.2
            )
        assert failed.value.code == "content_policy_violation"
        history = sdk.llm.get_chat_session(chat["id"])["messages"]
    assert [(m["kind"], m["status"]) for m in history] == [
        ("text", "completed"),
        ("image", "completed"),
        ("text", "completed"),
        ("image", "failed"),
    ]
    assert balance_of(alice) == Decimal("10") - NANO
    books_clean(alice)
