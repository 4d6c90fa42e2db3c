"""POST /v1/openai/chat/completions with the official OpenAI SDK, over a socket, against the
fake OpenAI-compatible vendor: replies, streams, tools, forwarding, fallback, errors, money."""

from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import Hold, LedgerEntry

from ..conftest import balance_of, make_user, usage_rows

GPT4O_IN, GPT4O_OUT = Decimal("2.00"), Decimal("8.00")  # catalog price per 1M tokens (80% of list)


@pytest.fixture
def dave(committed):
    # Dave: $5, calls the OpenAI-compatible surface.
    return make_user("dave", "5")


@pytest.fixture
def client(api_server, dave):
    return openai.OpenAI(api_key=dave.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)


def cost(prompt: int, completion: int) -> Decimal:
    return (prompt * GPT4O_IN + completion * GPT4O_OUT) / 1_000_000


def test_plain_completion_is_an_openai_object_billed_at_the_exact_cost(client, dave, vendors):
    resp = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello gateway"}]
    )

    assert resp.object == "chat.completion" and resp.model == "gpt-4o"
    assert resp.choices[0].message.content == "Echo: Hello gateway"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 3)
    expected = cost(5, 3)
    assert Decimal(str(resp.usage.model_extra["cost_usd"])) == expected
    assert balance_of(dave) == Decimal("5") - expected
    [row] = usage_rows(dave)
    assert (row.model, row.status, row.prompt_tokens, row.completion_tokens) == ("gpt-4o", "ok", 5, 3)
    assert row.cost_usd == expected and row.route == "openai:gpt-4o"
    charge = LedgerEntry.objects.get(account=dave.account, kind="charge")
    assert charge.amount == -expected
    assert vendors["openai"].requests[-1]["json"]["model"] == "gpt-4o"


def test_a_clients_request_id_is_kept_up_to_the_stored_width_and_a_longer_one_replaced(
    api_server, dave, vendors
):
    """The id is stored with the hold and the usage row (64 characters): a longer one once broke
    the hold's insert on PostgreSQL, a 500 for a header."""
    sent = {"kept": "t" * 64, "replaced": "t" * 65}
    answered = {}
    for name, request_id in sent.items():
        response = httpx.post(
            f"{api_server}/v1/openai/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello gateway"}]},
            headers={"Authorization": f"Bearer {dave.raw_key}", "x-request-id": request_id},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answered[name] = response.headers["x-request-id"]
    assert answered["kept"] == sent["kept"]
    assert answered["replaced"].startswith("req_") and len(answered["replaced"]) <= 64
    rows = usage_rows(dave)
    assert sorted(row.request_id for row in rows) == sorted(answered.values())
    assert all(row.status == "ok" and row.cost_usd == cost(5, 3) for row in rows)
    assert balance_of(dave) == Decimal("5") - 2 * cost(5, 3)


def test_every_field_is_forwarded_and_only_model_is_replaced(client, vendors):
    client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        seed=7,
        logprobs=True,
        top_logprobs=2,
        temperature=0.3,
        response_format={"type": "json_object"},
        user="u-1",
        presence_penalty=0.5,
        extra_body={"metadata": {"trace": "abc"}, "custom_vendor_flag": True},
    )
    sent = vendors["openai"].requests[-1]["json"]
    assert sent["seed"] == 7 and sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert sent["temperature"] == 0.3 and sent["response_format"] == {"type": "json_object"}
    assert sent["user"] == "u-1" and sent["presence_penalty"] == 0.5
    assert sent["metadata"] == {"trace": "abc"} and sent["custom_vendor_flag"] is True
    assert "stream" not in sent


def test_stream_without_include_usage_hides_usage_but_bills_exactly(client, dave, vendors):
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream me now"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me now"
    assert all(c.usage is None for c in chunks)
    assert all(c.model == "gpt-4o" for c in chunks)
    assert vendors["openai"].requests[-1]["json"]["stream_options"] == {"include_usage": True}
    expected = cost(6, 4)
    assert balance_of(dave) == Decimal("5") - expected
    assert usage_rows(dave)[-1].cost_usd == expected


def test_stream_with_include_usage_ends_with_usage_and_cost(client, vendors):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "count these words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (6, 4)
    assert Decimal(str(last.usage.model_extra["cost_usd"])) == cost(6, 4)


def test_raw_stream_framing_is_openai_sse(api_server, dave, vendors):
    with httpx.stream(
        "POST",
        f"{api_server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {dave.raw_key}"},
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "a b"}]},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])


def test_tools_round_trip(client, vendors):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool said: sunny, 21C"


def test_a_failing_first_route_falls_back_and_charges_once(client, dave, vendors):
    vendors["openai"].script("500", times=1)
    resp = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "fallback please"}]
    )
    assert resp.choices[0].message.content == "Echo: fallback please"
    models_tried = [r["json"]["model"] for r in vendors["openai"].requests]
    assert models_tried == ["gpt-4o", "openai/gpt-4o"]
    [row] = usage_rows(dave)
    assert row.route == "openai_compat_fallback:openai/gpt-4o"
    assert LedgerEntry.objects.filter(account=dave.account, kind="charge").count() == 1


def test_streams_fall_back_before_the_first_byte(client, vendors):
    vendors["openai"].script("429", times=1)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "retry stream"}]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: retry stream"
    assert len(vendors["openai"].requests) == 2


def test_all_routes_failing_is_503_and_costs_nothing(client, dave, vendors):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[fault:500]] x"}]
        )
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "all_routes_failed"
    assert balance_of(dave) == Decimal("5")
    [row] = usage_rows(dave)
    assert (row.status, row.error_code, row.cost_usd) == ("error", "all_routes_failed", 0)
    assert not Hold.objects.filter(account=dave.account, status=Hold.OPEN).exists()


def test_upstream_400_is_invalid_request_with_the_vendor_message(client, dave, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[fault:400]]"}]
        )
    assert caught.value.body["type"] == "invalid_request_error"
    assert "rejected the request" in caught.value.body["message"]
    assert len(vendors["openai"].requests) == 1  # a client error is not retried
    assert balance_of(dave) == Decimal("5")


def test_context_overflow_maps_to_context_length_exceeded(client, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[[fault:context]]"}]
        )
    assert caught.value.code == "context_length_exceeded"


def test_streaming_required_above_4096_before_any_hold_or_upstream_call(client, dave, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o", max_tokens=8000, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "streaming_required"
    assert caught.value.body["meta"] == {"max_tokens": 8000, "limit": 4096}
    assert caught.value.body["message"].startswith("max_tokens=8000 is above 4096")
    assert vendors["openai"].requests == []
    assert not Hold.objects.filter(account=dave.account).exists()


def test_insufficient_balance_is_402_without_an_upstream_call(api_server, committed, vendors):
    poor = make_user("poor", "0.0001")
    client = openai.OpenAI(api_key=poor.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-4o", max_tokens=4000, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 402 and caught.value.body["code"] == "insufficient_balance"
    assert "E-" not in caught.value.message and "available $0.0001." in caught.value.message  # money as money
    assert vendors["openai"].requests == []
    [row] = usage_rows(poor)  # the user sees the refused call in their usage, at no cost
    assert (row.status, row.error_code, row.cost_usd, row.model) == (
        "error",
        "insufficient_balance",
        0,
        "gpt-4o",
    )


def test_a_call_refused_for_permission_is_a_usage_row_at_no_cost_on_every_door(
    api_server, committed, vendors
):
    narrow = make_user("narrow403", "1", allowed_models=["deepseek-chat"])
    calls = [
        ("/v1/openai/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
        (
            "/v1/anthropic/v1/messages",
            {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
        ),
        ("/v1/openai/responses", {"model": "gpt-5", "input": "x"}),
        ("/v1/openai/images/generations", {"model": "gpt-image-1-5", "prompt": "a fox"}),
    ]
    ids = []
    for path, body in calls:
        response = httpx.post(
            api_server + path, json=body, headers={"Authorization": f"Bearer {narrow.raw_key}"}, timeout=30
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "model_not_allowed"
        ids.append(response.headers["x-request-id"])
    rows = usage_rows(narrow)
    assert [(r.request_id, r.endpoint, r.model, r.status, r.error_code, r.cost_usd) for r in rows] == [
        (ids[0], "chat", "gpt-4o", "error", "model_not_allowed", 0),
        (ids[1], "anthropic_messages", "claude-sonnet-4-5", "error", "model_not_allowed", 0),
        (ids[2], "responses", "gpt-5", "error", "model_not_allowed", 0),
        (ids[3], "images", "gpt-image-1-5", "error", "model_not_allowed", 0),
    ]
    assert not any(vendors[name].requests for name in ("openai", "anthropic", "openai_images"))


def test_unknown_model_disallowed_model_and_bad_fields(api_server, client, committed, vendors):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-99", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    narrow = make_user("narrow", "1", allowed_models=["deepseek-chat"])
    narrow_client = openai.OpenAI(api_key=narrow.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        narrow_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_allowed"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[], temperature=1)
    assert caught.value.code == "invalid_parameter"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nano-banana", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "wrong_model_kind"
    assert vendors["openai"].requests == []


def test_reply_without_usage_is_billed_from_the_text(client, dave, vendors):
    resp = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "[[fault:no_usage]] hi"}]
    )
    assert resp.choices[0].message.content.startswith("Echo:")
    row = usage_rows(dave)[-1]
    assert row.completion_tokens > 0 and row.cost_usd > 0
    assert balance_of(dave) == Decimal("5") - row.cost_usd


def test_stream_cut_off_midway_ends_with_an_error_event_and_bills_what_was_sent(api_server, dave, vendors):
    with httpx.stream(
        "POST",
        f"{api_server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {dave.raw_key}"},
        json={
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "[[fault:cutoff]] one two three four five"}],
        },
    ) as r:
        body = r.read().decode()
    assert '"content":"Echo:"' in body.replace(" ", "")
    assert '"error"' in body and "data: [DONE]" not in body
    row = usage_rows(dave)[-1]
    assert row.status == "error" and row.cost_usd > 0
    assert balance_of(dave) == Decimal("5") - row.cost_usd
    assert not Hold.objects.filter(account=dave.account, status=Hold.OPEN).exists()


def test_a_client_that_drops_a_non_streamed_request_still_pays_for_the_reply_the_vendor_made(
    api_server, dave, vendors
):
    """A non-streamed call runs to its end when the client leaves (the vendor bills it all): the
    whole reply is charged, never $0."""
    words = " ".join(["hello"] * 3000)
    vendors["openai"].script("slow_first_byte")  # the vendor is still working when the client leaves
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{api_server}/v1/openai/chat/completions",
            headers={"Authorization": f"Bearer {dave.raw_key}"},
            json={"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": words}]},
            timeout=httpx.Timeout(30, read=0.5),
        )
    row = wait_for_row(dave)
    assert row.status == "ok" and row.prompt_tokens == 3003  # the fake's count: 3,000 words + 3
    assert row.cost_usd == cost(row.prompt_tokens, row.completion_tokens) > 0
    assert balance_of(dave) == Decimal("5") - row.cost_usd
    assert not Hold.objects.filter(account=dave.account, status=Hold.OPEN).exists()


def wait_for_row(user, timeout: float = 10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not usage_rows(user):
        time.sleep(0.05)
    [row] = usage_rows(user)
    return row


def test_slow_first_byte_gets_keepalive_comments(api_server, dave, vendors):
    with httpx.stream(
        "POST",
        f"{api_server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {dave.raw_key}"},
        timeout=30,
        json={
            "model": "gpt-4o",
            "stream": True,
            "messages": [{"role": "user", "content": "[[fault:slow_first_byte]] wake up"}],
        },
    ) as r:
        body = r.read().decode()
    assert body.startswith(": keep-alive\n\n")
    assert "data: [DONE]" in body


def test_client_disconnect_cancels_upstream_and_pays_for_what_was_produced(api_server, dave, vendors):

    vendors["openai"].chunk_delay = 0.05
    try:
        words = " ".join(f"w{i}" for i in range(200))
        with httpx.stream(
            "POST",
            f"{api_server}/v1/openai/chat/completions",
            headers={"Authorization": f"Bearer {dave.raw_key}"},
            json={
                "model": "gpt-4o",
                "stream": True,
                "max_tokens": 200,
                "messages": [{"role": "user", "content": words}],
            },
        ) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i > 8:
                    break  # leave mid-stream
        assert vendors["openai"].wait_for_disconnects(1, timeout=5)
    finally:
        vendors["openai"].chunk_delay = 0.0
    row = wait_for_row(dave)
    assert row.status == "cancelled"
    full = cost(203, 61)  # what the whole reply would have cost (60 echoed words + "Echo:")
    assert 0 < row.cost_usd < full
    assert balance_of(dave) == Decimal("5") - row.cost_usd
    assert not Hold.objects.filter(account=dave.account, status=Hold.OPEN).exists()


def test_monthly_spend_cap_refuses_the_request_whose_hold_would_pass_it(api_server, committed, vendors):
    capped = make_user("capped", "5", monthly_spend_cap_usd=Decimal("0.001"))
    client = openai.OpenAI(api_key=capped.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    served = 0
    with pytest.raises(openai.PermissionDeniedError) as caught:
        for _ in range(40):
            client.chat.completions.create(
                model="gpt-4o", max_tokens=3, messages=[{"role": "user", "content": "go"}]
            )
            served += 1
    assert caught.value.code == "spend_cap_reached" and served >= 1
    assert len(vendors["openai"].requests) == served  # the refused request never reached the vendor
    spent = sum(row.cost_usd for row in usage_rows(capped))
    one_hold = Hold.objects.filter(account=capped.account).order_by("id").first().amount
    assert spent <= Decimal("0.001") < spent + one_hold  # refused exactly when its worst case no longer fit
    assert usage_rows(capped)[-1].error_code == "spend_cap_reached"  # the refusal is logged, at no cost


def test_every_reply_says_how_much_time_the_gateway_added(api_server, dave, vendors):
    response = httpx.post(
        f"{api_server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {dave.raw_key}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "timing"}]},
    )
    overhead = float(response.headers["x-gpuniq-overhead-ms"])
    assert 0 < overhead < response.elapsed.total_seconds() * 1000
    # a whole reply says its length (it leaves with its head in one write), not chunked
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers
    assert response.json()["object"] == "chat.completion"


def test_a_negative_balance_refuses_new_requests_with_402_before_any_upstream_call(
    api_server, committed, vendors
):
    from billing import ledger

    owing = make_user("owing", "5")
    spent = ledger.hold(account_id=owing.account.pk, amount="5", idempotency_key=f"spent-{owing.pk}")
    ledger.settle(hold_id=spent.id, actual="5")
    ledger.post(  # a refund that takes back $3 already spent: the one way below zero
        account_id=owing.account.pk,
        amount="-3",
        kind=LedgerEntry.REFUND,
        idempotency_key=f"refund-{owing.pk}",
        reason="refund",
    )
    assert balance_of(owing) == Decimal("-3")
    client = openai.OpenAI(api_key=owing.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 402 and caught.value.body["code"] == "insufficient_balance"
    assert "-$3.00" in caught.value.message
    assert vendors["openai"].requests == []
    assert balance_of(owing) == Decimal("-3") and ledger.find_mismatches() == []
