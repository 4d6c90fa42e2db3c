"""Persistent chat sessions (/v1/llm/chats) over a socket against the fake vendors: CRUD, turns that
carry the stored history, streamed turns, context-window truncation, money, and ownership."""

import time
from decimal import Decimal

import httpx

from billing.models import Hold
from llm.chat_turns import estimate_tokens
from billing.models import UsageLog
from llm.models import Chat, ChatMessage

from ..conftest import balance_of, native_client, service_extra_env, usage_rows

GPT4O_IN, GPT4O_OUT = Decimal("2.00"), Decimal("8.00")  # catalog price per 1M tokens


def cost(prompt: int, completion: int) -> Decimal:
    return (prompt * GPT4O_IN + completion * GPT4O_OUT) / 1_000_000


def new_chat(client, **fields) -> dict:
    r = client.post("/chats", json={"model": "gpt-4o", "title": "Research", **fields})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_create_list_get_update_delete(as_alice, alice):
    first = new_chat(as_alice, title="First")
    second = new_chat(as_alice, title="Second", model="claude-haiku-4-5", system_prompt="Be brief.")
    assert (second["title"], second["model"], second["system_prompt"]) == (
        "Second",
        "claude-haiku-4-5",
        "Be brief.",
    )

    listed = as_alice.get("/chats", params={"limit": 1}).json()["data"]
    assert [c["id"] for c in listed["chats"]] == [second["id"]]  # newest first
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 1, 0)
    assert [c["id"] for c in as_alice.get("/chats", params={"offset": 1}).json()["data"]["chats"]] == [
        first["id"]
    ]

    r = as_alice.patch(f"/chats/{first['id']}", json={"title": "Renamed", "model": "gpt-4.1"})
    assert r.status_code == 200 and r.json()["data"]["title"] == "Renamed"
    got = as_alice.get(f"/chats/{first['id']}").json()["data"]
    assert (got["title"], got["model"], got["messages"], got["message_count"]) == (
        "Renamed",
        "gpt-4.1",
        [],
        0,
    )

    r = as_alice.delete(f"/chats/{first['id']}")
    assert r.status_code == 200 and r.json()["data"] == {"id": first["id"], "deleted": True}
    assert as_alice.get(f"/chats/{first['id']}").json()["error"]["code"] == "chat_not_found"
    assert list(Chat.objects.filter(user_id=alice.pk).values_list("id", flat=True)) == [second["id"]]


def test_defaults_and_validation(as_alice):
    chat = as_alice.post("/chats", json={}).json()["data"]
    assert (chat["title"], chat["model"]) == ("New chat", "claude-haiku-4-5")
    cases = [
        ({"model": "no-such-model"}, 404, "model_not_found"),
        ({"model": "nano-banana"}, 400, "wrong_model_kind"),
        ({"title": "x" * 201}, 400, "invalid_parameter"),
        ({"title": "nul \x00 byte"}, 400, "invalid_parameter"),
    ]
    for body, status, code in cases:
        r = as_alice.post("/chats", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), body
    assert as_alice.patch(f"/chats/{chat['id']}", json={}).json()["error"]["code"] == "invalid_parameter"
    assert as_alice.get("/chats", params={"limit": 0}).json()["error"]["code"] == "invalid_parameter"
    assert as_alice.get("/chats/99999999999999999999999").json()["error"]["code"] == "chat_not_found"
    for body, code in [
        ({}, "missing_parameter"),
        ({"message": ""}, "invalid_parameter"),
        ({"message": 5}, "invalid_parameter"),
        ({"message": "hi", "model": "flux-2-pro"}, "wrong_model_kind"),
        ({"message": "hi", "temperature": 9}, "invalid_parameter"),
    ]:
        r = as_alice.post(f"/chats/{chat['id']}/messages", json=body)
        assert r.json()["error"]["code"] == code, body
    assert not ChatMessage.objects.filter(chat_id=chat["id"]).exists()
    assert httpx.get(str(as_alice.base_url.join("chats"))).json()["error"]["code"] == "missing_api_key"


def test_each_turn_sees_the_history_and_is_stored_with_tokens_and_cost(as_alice, alice, vendors):
    chat = new_chat(as_alice)
    first = as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "Hello there"}).json()["data"]
    assert first["content"] == "Echo: Hello there" and first["truncated_turns"] == 0
    assert (first["prompt_tokens"], first["completion_tokens"]) == (5, 3)
    second = as_alice.post(
        f"/chats/{chat['id']}/messages", json={"message": "And again", "temperature": 0.5}
    ).json()["data"]

    sent = vendors["openai"].requests[-1]["json"]
    assert sent["messages"] == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Echo: Hello there"},
        {"role": "user", "content": "And again"},
    ]
    assert sent["temperature"] == 0.5 and sent["model"] in (
        "gpt-4o",
        "openai/gpt-4o",
    )  # a route may be cooling
    assert (second["prompt_tokens"], second["completion_tokens"]) == (5 + 6 + 5, 3)

    rows = list(ChatMessage.objects.filter(chat_id=chat["id"]).order_by("id"))
    assert [(m.role, m.content) for m in rows] == [
        ("user", "Hello there"),
        ("assistant", "Echo: Hello there"),
        ("user", "And again"),
        ("assistant", "Echo: And again"),
    ]
    assert all(
        m.tokens == estimate_tokens(m.content) and m.kind == "text" and m.status == "completed" for m in rows
    )
    usage = usage_rows(alice)
    assert [u.endpoint for u in usage] == ["chat_session", "chat_session"]
    for reply, row in zip(rows[1::2], usage):
        assert (reply.prompt_tokens, reply.completion_tokens, reply.cost_usd) == (
            row.prompt_tokens,
            row.completion_tokens,
            row.cost_usd,
        )
        assert reply.request_id == row.request_id
    assert rows[1].cost_usd == cost(5, 3) and rows[3].cost_usd == cost(16, 3)
    assert all(m.cost_usd == 0 for m in rows[::2])
    assert balance_of(alice) == Decimal("10") - cost(5, 3) - cost(16, 3)
    assert second["message_id"] == rows[3].pk and second["user_message_id"] == rows[2].pk

    full = as_alice.get(f"/chats/{chat['id']}").json()["data"]
    assert [m["content"] for m in full["messages"]] == [m.content for m in rows]
    assert full["messages"][1]["cost_usd"] == float(cost(5, 3)) and full["message_count"] == 4


def test_system_prompt_goes_first_and_a_turn_may_use_another_model(as_alice, vendors):
    chat = new_chat(as_alice, system_prompt="You are terse.")
    r = as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "hi", "model": "gpt-4.1"})
    assert r.json()["data"]["model"] == "gpt-4.1"
    sent = vendors["openai"].requests[-1]["json"]
    assert sent["model"] in ("gpt-4.1", "openai/gpt-4.1")  # a route may be cooling down
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]
    assert ChatMessage.objects.filter(chat_id=chat["id"]).last().model == "gpt-4.1"


def test_streamed_turn_is_stored_when_the_stream_ends(as_alice, alice, vendors):
    chat = new_chat(as_alice)
    with as_alice.stream(
        "POST", f"/chats/{chat['id']}/messages", json={"message": "stream this reply", "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-gpuniq-truncated-turns"] == "0"
        body = r.read().decode()
    assert body.endswith("data: [DONE]\n\n")
    [user, reply] = ChatMessage.objects.filter(chat_id=chat["id"]).order_by("id")
    assert (user.content, reply.content, reply.finish_reason) == (
        "stream this reply",
        "Echo: stream this reply",
        "stop",
    )
    [row] = usage_rows(alice)
    assert (
        (reply.prompt_tokens, reply.completion_tokens, reply.cost_usd)
        == (6, 4, cost(6, 4))
        == (row.prompt_tokens, row.completion_tokens, row.cost_usd)
    )
    assert row.stream and row.endpoint == "chat_session"
    assert balance_of(alice) == Decimal("10") - cost(6, 4)


def test_a_failed_turn_stores_nothing_and_costs_nothing(as_alice, alice, vendors):
    chat = new_chat(as_alice, model="deepseek-ocr")  # one route: its failures cool nothing other tests use
    r = as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "[[fault:500]] boom"})
    assert (r.status_code, r.json()["error"]["code"]) == (502, "upstream_error")
    with as_alice.stream(
        "POST",
        f"/chats/{chat['id']}/messages",
        json={"message": "[[fault:midstream_error]] a b c d e f", "stream": True},
    ) as s:
        assert '"error"' in s.read().decode()
    assert not ChatMessage.objects.filter(chat_id=chat["id"]).exists()
    assert balance_of(alice) == Decimal("10") - sum(u.cost_usd for u in usage_rows(alice))
    assert usage_rows(alice)[0].cost_usd == 0
    assert not Hold.objects.filter(account=alice.account, status=Hold.OPEN).exists()


def test_history_beyond_the_context_window_leaves_out_the_oldest_turns(as_alice, vendors):
    chat = new_chat(as_alice, system_prompt="Stay on topic.")
    big = "word " * 24_000  # 120,000 characters: ~40k tokens each; gpt-4o's window is 128k
    for i in range(3):
        for role in ("user", "assistant"):
            content = f"{role} {i} {big}"
            ChatMessage.objects.create(
                chat_id=chat["id"],
                role=role,
                content=content,
                tokens=estimate_tokens(content),
                model="gpt-4o",
            )
    r = as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "summarise"})
    data = r.json()["data"]
    assert r.status_code == 200 and data["truncated_turns"] == 4
    sent = vendors["openai"].requests[-1]["json"]["messages"]
    assert [(m["role"], m["content"][:12]) for m in sent] == [
        ("system", "Stay on topi"),
        ("user", "user 2 word "),
        ("assistant", "assistant 2 "),
        ("user", "summarise"),
    ]
    reply = ChatMessage.objects.filter(chat_id=chat["id"]).last()
    assert reply.truncated_turns == 4 and reply.role == "assistant"


def test_another_users_chat_is_a_404_on_every_endpoint(as_alice, as_bob, bob, alice, vendors):
    bobs = new_chat(as_bob, title="Bob's secrets")
    as_bob.post(f"/chats/{bobs['id']}/messages", json={"message": "my secret"})
    calls = [
        ("GET", f"/chats/{bobs['id']}", None),
        ("PATCH", f"/chats/{bobs['id']}", {"title": "pwned"}),
        ("DELETE", f"/chats/{bobs['id']}", None),
        ("POST", f"/chats/{bobs['id']}/messages", {"message": "let me in"}),
        ("POST", f"/chats/{bobs['id']}/messages", {"message": "let me in", "stream": True}),
    ]
    for method, path, body in calls:
        r = as_alice.request(method, path, json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "chat_not_found"), (method, path)
    assert as_alice.get("/chats").json()["data"] == {"chats": [], "total": 0, "limit": 20, "offset": 0}
    chat = Chat.objects.get(pk=bobs["id"])
    assert chat.title == "Bob's secrets" and chat.user_id == bob.pk
    assert ChatMessage.objects.filter(chat=chat).count() == 2
    assert not UsageLog.objects.filter(user_id=alice.pk).exists() and balance_of(alice) == Decimal("10")


def test_deleting_a_chat_deletes_its_messages(as_alice, vendors):
    chat = new_chat(as_alice)
    as_alice.post(f"/chats/{chat['id']}/messages", json={"message": "one"})
    assert ChatMessage.objects.filter(chat_id=chat["id"]).count() == 2
    as_alice.delete(f"/chats/{chat['id']}")
    assert not ChatMessage.objects.filter(chat_id=chat["id"]).exists()


def test_history_survives_a_server_restart(alice, fake_vendors, vendors):
    from ..live import LiveServer

    first = LiveServer(env=service_extra_env(fake_vendors)).start()
    try:
        with native_client(first.url, alice) as client:
            chat = new_chat(client)
            client.post(f"/chats/{chat['id']}/messages", json={"message": "remember me"})
    finally:
        first.stop()
    second = LiveServer(env=service_extra_env(fake_vendors)).start()
    try:
        with native_client(second.url, alice) as client:
            messages = client.get(f"/chats/{chat['id']}").json()["data"]["messages"]
            assert [m["content"] for m in messages] == ["remember me", "Echo: remember me"]
            client.post(f"/chats/{chat['id']}/messages", json={"message": "still there?"})
        assert [m["content"] for m in vendors["openai"].requests[-1]["json"]["messages"]] == [
            "remember me",
            "Echo: remember me",
            "still there?",
        ]
    finally:
        second.stop()


def test_an_abandoned_stream_is_billed_for_what_was_sent_but_stores_no_turn(as_alice, alice, vendors):
    chat = new_chat(as_alice)
    with as_alice.stream(
        "POST",
        f"/chats/{chat['id']}/messages",
        json={"message": "[[fault:stall]] one two three four five", "stream": True},
    ) as r:
        for line in r.iter_lines():
            if '"content":"' in line:
                break  # the client goes away mid-reply
    assert vendors["openai"].wait_for_disconnects(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not usage_rows(alice):
        time.sleep(0.05)
    [row] = usage_rows(alice)
    assert (row.status, row.error_code) == ("cancelled", "client_disconnected")
    assert not ChatMessage.objects.filter(chat_id=chat["id"]).exists()
    assert not Hold.objects.filter(account=alice.account, status=Hold.OPEN).exists()
    assert balance_of(alice) == Decimal("10") - row.cost_usd
