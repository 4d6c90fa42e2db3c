"""The Anthropic Messages front door with the official `anthropic` Python SDK, through the real
ASGI server: create, stream (text, tool use, thinking), a tools round trip, count_tokens and
error types, to a Claude model (forwarded to Anthropic as sent) and to an OpenAI-family model
(translated both ways), each billed exactly like the same usage through Chat Completions."""

import json
from decimal import Decimal

import anthropic
import openai
import pytest

from ..conftest import balance_of, make_user, usage_rows

CLAUDE, GPT, THINKER = "claude-haiku-4-5", "gpt-4o", "deepseek-v3.2-thinking"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
pytestmark = pytest.mark.e2e


@pytest.fixture
def ada(committed):
    # Ada: $5, uses Claude-style clients.
    return make_user("ada", "5")


@pytest.fixture
def client(api_server, ada):
    return anthropic.Anthropic(api_key=ada.raw_key, base_url=f"{api_server}/v1/anthropic", max_retries=0)


def _cost_of_last(user) -> Decimal:
    return usage_rows(user)[-1].cost_usd


@pytest.mark.parametrize(
    "slug,vendor", [(CLAUDE, "anthropic"), (GPT, "openai"), ("gemini-2.5-pro", "gemini")]
)
def test_create_answers_a_message_billed_like_chat_completions(
    api_server, client, ada, vendors, slug, vendor
):
    message = client.messages.create(
        model=slug,
        max_tokens=200,
        system="Be brief. [[cached]]",
        messages=[{"role": "user", "content": "Hello front door"}],
    )
    assert message.type == "message" and message.role == "assistant" and message.model == slug
    assert [b.type for b in message.content][-1] == "text"  # after a thinking block for Gemini 2.5 Pro
    assert message.content[-1].text == "Echo: Hello front door"
    assert message.stop_reason == "end_turn"
    row = usage_rows(ada)[-1]
    assert row.endpoint == "anthropic_messages" and row.route.startswith(vendor) and row.status == "ok"
    assert message.usage.input_tokens == row.prompt_tokens - row.cached_tokens
    assert message.usage.cache_read_input_tokens == row.cached_tokens > 0
    assert message.usage.output_tokens == row.completion_tokens
    spent = Decimal("5") - balance_of(ada)
    assert spent == row.cost_usd > 0
    # the same conversation through Chat Completions costs exactly the same
    chat = openai.OpenAI(api_key=ada.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    reply = chat.chat.completions.create(
        model=slug,
        max_tokens=200,
        messages=[
            {"role": "system", "content": "Be brief. [[cached]]"},
            {"role": "user", "content": "Hello front door"},
        ],
    )
    assert reply.usage.prompt_tokens == row.prompt_tokens
    assert _cost_of_last(ada) == row.cost_usd
    assert Decimal("5") - balance_of(ada) == 2 * row.cost_usd


def test_claude_requests_reach_anthropic_as_sent(client, vendors):
    """Thinking blocks with signatures, cache_control, betas and ?beta=true are forwarded untouched."""
    history = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "SigABC"},
                {"type": "text", "text": "ok"},
            ],
        },
        {"role": "user", "content": "go on"},
    ]
    message = client.beta.messages.create(
        model=CLAUDE,
        max_tokens=300,
        messages=history,
        betas=["fancy-2099-01-01"],
        extra_query={"beta": "true"},
        thinking={"type": "enabled", "budget_tokens": 128},
        system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
    )
    assert message.model == CLAUDE
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature.startswith("Sig")
    sent = vendors["anthropic"].requests[-1]
    assert sent["path"] == "/v1/messages" and sent["query"] == {"beta": "true"}
    assert sent["headers"]["anthropic-beta"] == "fancy-2099-01-01"
    assert sent["json"]["model"] == "claude-haiku-4-5-20251001"
    assert sent["json"]["messages"] == history
    assert sent["json"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["json"]["thinking"] == {"type": "enabled", "budget_tokens": 128}


@pytest.mark.parametrize("slug", [CLAUDE, GPT])
def test_stream_text_in_anthropic_event_order(api_server, ada, vendors, slug):
    import httpx

    events = []
    with httpx.stream(
        "POST",
        f"{api_server}/v1/anthropic/v1/messages",
        timeout=30,
        headers={"x-api-key": ada.raw_key, "anthropic-version": "2023-06-01"},
        json={
            "model": slug,
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "stream me please"}],
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
    names = [e for e in events if e != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1:-2] == ["content_block_start"] + ["content_block_delta"] * 4 + ["content_block_stop"]
    assert usage_rows(ada)[-1].status == "ok" and usage_rows(ada)[-1].stream


@pytest.mark.parametrize("slug", [CLAUDE, GPT])
def test_sdk_stream_collects_text_and_usage(client, ada, vendors, slug):
    with client.messages.stream(
        model=slug, max_tokens=100, messages=[{"role": "user", "content": "stream it please"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: stream it please"
    row = usage_rows(ada)[-1]
    assert final.stop_reason == "end_turn" and final.model == slug
    assert final.usage.output_tokens == row.completion_tokens > 0
    assert final.usage.input_tokens == row.prompt_tokens - row.cached_tokens
    assert Decimal("5") - balance_of(ada) == row.cost_usd > 0


@pytest.mark.parametrize("slug", [CLAUDE, GPT, "gemini-2.5-pro"])
@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip(client, vendors, slug, stream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        with client.messages.stream(model=slug, max_tokens=200, tools=[WEATHER], messages=messages) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(model=slug, max_tokens=200, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"location": "Paris"} and call.id
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = client.messages.create(model=slug, max_tokens=200, tools=[WEATHER], messages=messages)
    assert second.content[-1].text == "The tool said: sunny" and second.stop_reason == "end_turn"
    if slug == GPT:  # the translation reached the vendor as Chat Completions tool messages
        sent = vendors["openai"].requests[-1]["json"]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
    if slug.startswith("gemini"):  # ... and as Gemini's functionCall / functionResponse parts
        parts = [p for c in vendors["gemini"].requests[-1]["json"]["contents"] for p in c["parts"]]
        assert {"name": "get_weather", "args": {"location": "Paris"}} == next(
            {k: p["functionCall"][k] for k in ("name", "args")} for p in parts if "functionCall" in p
        )
        response = next(p["functionResponse"] for p in parts if "functionResponse" in p)
        assert response["name"] == "get_weather" and "sunny" in json.dumps(response["response"])


IMAGES_AND_TEXT = {  # an inline image, an image by URL, then the question
    "role": "user",
    "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "what is this"},
    ],
}


def test_translation_carries_system_images_stops_and_tool_choice(client, vendors):
    client.messages.create(
        model=GPT,
        max_tokens=50,
        stop_sequences=["END"],
        extra_body={"temperature": 0.3, "top_k": 5},
        metadata={"user_id": "u-1"},
        tools=[WEATHER],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        system=[{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        messages=[IMAGES_AND_TEXT],
    )
    sent = vendors["openai"].requests[-1]["json"]
    assert sent["messages"][0] == {"role": "system", "content": "one\n\ntwo"}
    assert sent["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "text", "text": "what is this"},
    ]
    assert sent["stop"] == ["END"] and sent["temperature"] == 0.3
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert "top_k" not in sent and "metadata" not in sent


def test_translation_reaches_gemini_in_its_own_fields(client, vendors):
    """System blocks, images, stop sequences, top_k and thinking become Gemini's systemInstruction,
    inlineData / fileData parts, stopSequences, topK and thinkingConfig; its thoughts come back as
    a thinking block before the text."""
    message = client.messages.create(
        model="gemini-2.5-pro",
        max_tokens=3000,
        stop_sequences=["END"],
        extra_body={"top_k": 5},
        thinking={"type": "enabled", "budget_tokens": 20000},
        system=[{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        messages=[IMAGES_AND_TEXT],
    )
    sent = vendors["gemini"].requests[-1]["json"]
    assert sent["systemInstruction"] == {"parts": [{"text": "one\n\ntwo"}]}
    assert sent["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
        {"text": "what is this"},
    ]
    config = sent["generationConfig"]
    assert config["stopSequences"] == ["END"] and config["topK"] == 5
    assert config["thinkingConfig"]["includeThoughts"] is True and config["thinkingConfig"]["thinkingBudget"]
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[1].text == "Echo: what is this"


def test_count_tokens_is_free(client, ada, vendors):
    before = balance_of(ada), len(usage_rows(ada))
    claude = client.messages.count_tokens(
        model=CLAUDE, system="Be brief.", messages=[{"role": "user", "content": "count these four words"}]
    )
    assert claude.input_tokens == (2 + 3) + (4 + 3)  # the vendor's own count
    assert vendors["anthropic"].requests[-1]["path"] == "/v1/messages/count_tokens"
    gpt = client.messages.count_tokens(
        model=GPT, messages=[{"role": "user", "content": "count these four words"}]
    )
    assert gpt.input_tokens >= 4  # the gateway's generous estimate
    assert (balance_of(ada), len(usage_rows(ada))) == before


def test_errors_use_anthropic_types(api_server, client, vendors):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic.Anthropic(
            api_key="gpuniq_" + "x" * 40, base_url=f"{api_server}/v1/anthropic", max_retries=0
        ).messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert caught.value.body["error"]["code"] == "invalid_api_key"
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", cast_to=object, body={"model": CLAUDE, "messages": []})
    assert caught.value.body["error"] == {
        "type": "invalid_request_error",
        "code": "missing_parameter",
        "message": "Missing required parameter: 'max_tokens'.",
    }


def test_402_is_a_billing_error_and_costs_nothing(api_server, committed, vendors):
    broke = make_user("broke", "0.000001")  # Broke: a millionth of a dollar
    client = anthropic.Anthropic(api_key=broke.raw_key, base_url=f"{api_server}/v1/anthropic", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=GPT, max_tokens=1000, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"
    assert caught.value.body["error"]["code"] == "insufficient_balance"
    assert balance_of(broke) == Decimal("0.000001") and not vendors["openai"].requests


def test_root_path_and_bearer_keys_work_too(api_server, ada, vendors):
    client = anthropic.Anthropic(auth_token=ada.raw_key, base_url=api_server, max_retries=0)
    message = client.messages.create(model=GPT, max_tokens=20, messages=[{"role": "user", "content": "root"}])
    assert message.content[0].text == "Echo: root"


def test_vendor_failure_mid_stream_is_an_error_event_and_bills_only_what_came(client, ada, vendors):
    vendors["anthropic"].script("midstream_error")
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "a long story"}]
        ) as stream:
            for _ in stream:
                pass
    assert caught.value.body["error"]["type"] in ("overloaded_error", "api_error")
    row = usage_rows(ada)[-1]
    assert row.status == "error" and Decimal("5") - balance_of(ada) == row.cost_usd


BAD_BODIES = [
    b"not json",
    b"[1, 2]",
    b'{"model": "gpt-4o", "max_tokens": 5}',
    b'{"model": "gpt-4o", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}',
    b'{"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": 7}]}',
    b'{"model": 7, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "gpt-4o", "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
    (
        b'{"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", '
        b'"source": {"type": "file", "file_id": "f"}}]}]}'
    ),
    (
        b'{"model": "gpt-4o", "max_tokens": 5, '
        b'"tools": [{"type": "web_search_20250305", "name": "web_search"}], '
        b'"messages": [{"role": "user", "content": "x"}]}'
    ),
    b'{"model": "gpt-4o", "max_tokens": 5, "tools": [7], "messages": [{"role": "user", "content": "x"}]}',
    (
        b'{"model": "gpt-4o", "max_tokens": 5, "stop_sequences": "END", '
        b'"messages": [{"role": "user", "content": "x"}]}'
    ),
    (
        b'{"model": "deepseek-v3.2-thinking", "max_tokens": 5, "thinking": {"type": "adaptive"}, '
        b'"output_config": "x", "tool_choice": "auto", "temperature": 5, '
        b'"messages": [{"role": "user", "content": "x"}]}'
    ),
]


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_client_mistakes_are_400_in_anthropics_envelope_and_cost_nothing(api_server, ada, vendors, raw):
    import httpx

    response = httpx.post(
        f"{api_server}/v1/anthropic/v1/messages",
        content=raw,
        timeout=30,
        headers={
            "x-api-key": ada.raw_key,
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert balance_of(ada) == Decimal("5") and not vendors["openai"].requests


def test_thinking_becomes_reasoning_and_back(client, vendors):
    """An OpenAI-compatible reasoning model: `thinking` asks for reasoning_effort, and its
    reasoning_content comes back as a thinking block, plain and streamed."""
    thinking = {"type": "enabled", "budget_tokens": 2048}
    plain = client.messages.create(
        model=THINKER,
        max_tokens=4000,
        thinking=thinking,
        messages=[{"role": "user", "content": "think about it"}],
    )
    assert vendors["openai"].requests[-1]["json"]["reasoning_effort"] == "low"
    assert [b.type for b in plain.content] == ["thinking", "text"]
    assert plain.content[0].thinking.startswith("Thinking about")
    with client.messages.stream(
        model=THINKER,
        max_tokens=4000,
        thinking=thinking,
        messages=[{"role": "user", "content": "think about it"}],
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert kinds[0] == "thinking_delta" and kinds[-1] == "text_delta"
    assert [b.type for b in final.content] == ["thinking", "text"] and final.content[1].text == plain.content[
        1
    ].text


def test_claude_thinking_stream_keeps_its_signature(client, vendors):
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think first"}],
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "signature_delta" in kinds
    assert final.content[0].type == "thinking" and final.content[0].signature.startswith("Sig")


def test_translated_stream_failure_is_an_error_event(client, ada, vendors):
    vendors["openai"].script("midstream_error")
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(
            model=GPT, max_tokens=100, messages=[{"role": "user", "content": "a long story"}]
        ) as stream:
            for _ in stream:
                pass
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "api_error"
    row = usage_rows(ada)[-1]
    assert row.status == "error" and Decimal("5") - balance_of(ada) == row.cost_usd


def test_the_hold_covers_what_anthropic_can_bill_for_the_body_as_sent(client, ada, vendors):
    """Claude routes get the original body: its cache writes (1-hour TTL at 2x input) and its
    thinking budget are in the hold, though the Chat Completions translation carries neither."""
    from billing.models import Hold

    def hold_for(**extra) -> Decimal:
        block = {"type": "text", "text": "some words " * 50, **extra.pop("block", {})}
        extra.setdefault("max_tokens", 100)
        message = client.messages.with_raw_response.create(
            model=CLAUDE, messages=[{"role": "user", "content": [block]}], **extra
        )
        return Hold.objects.get(request_id=message.headers["x-request-id"]).amount

    plain = hold_for()
    tools = hold_for(tools=[WEATHER])  # a cache breakpoint on a tool: the translation has no place for it
    cached = hold_for(tools=[{**WEATHER, "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
    thinking = hold_for(thinking={"type": "enabled", "budget_tokens": 3000}, max_tokens=4000)
    assert cached > tools and thinking - plain >= Decimal("4.00") * (3000 + 3900) / 1_000_000


def test_models_list_and_retrieve_follow_the_key_allow_list(api_server, committed, vendors):
    # Lee: a key limited to two models.
    lee = make_user("lee", "1", allowed_models=[CLAUDE, GPT])
    client = anthropic.Anthropic(api_key=lee.raw_key, base_url=f"{api_server}/v1/anthropic", max_retries=0)
    listed = client.models.list()
    assert sorted(m.id for m in listed.data) == sorted([CLAUDE, GPT]) and listed.has_more is False
    assert client.models.retrieve(GPT).type == "model"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("gemini-2.5-pro")


@pytest.mark.parametrize("slug", [CLAUDE, GPT])
def test_keep_alives_never_precede_message_start(api_server, ada, vendors, slug):
    """A slow first byte gets SSE comments (every SSE parser ignores them) while no message has
    started; silences after message_start are Anthropic `ping` events. Anthropic's streams open
    with message_start: a ping before it is out of order for clients that read the events."""
    import httpx

    vendor = vendors["anthropic" if slug == CLAUDE else "openai"]
    vendor.script("slow_first_byte")
    vendor.chunk_delay = 0.7  # longer than the test server's 0.5 s keep-alive interval
    try:
        with httpx.stream(
            "POST",
            f"{api_server}/v1/anthropic/v1/messages",
            timeout=30,
            headers={"x-api-key": ada.raw_key, "anthropic-version": "2023-06-01"},
            json={
                "model": slug,
                "max_tokens": 100,
                "stream": True,
                "messages": [{"role": "user", "content": "wake up slowly"}],
            },
        ) as response:
            body = response.read().decode()
    finally:
        vendor.chunk_delay = 0.0
    assert body.startswith(": keep-alive\n\n")
    names = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "ping" in names[1:]
    assert usage_rows(ada)[-1].status == "ok"


def test_refusals_carry_anthropics_error_types(api_server, committed, vendors):
    """A model outside the key's allow-list is a permission_error, a key over its rate a
    rate_limit_error with Retry-After, every route overloaded an overloaded_error; all free."""
    ask = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}

    def client_of(user):
        return anthropic.Anthropic(api_key=user.raw_key, base_url=f"{api_server}/v1/anthropic", max_retries=0)

    # Pia: a key limited to GPT-4o.
    pia = make_user("pia", "1", allowed_models=[GPT])
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client_of(pia).messages.create(model=CLAUDE, **ask)
    assert caught.value.body["error"]["type"] == "permission_error"
    assert caught.value.body["error"]["code"] == "model_not_allowed"
    # Rae: a key allowed one request a minute.
    rae = make_user("rae", "1", rpm=1)
    client_of(rae).messages.create(model=GPT, **ask)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client_of(rae).messages.create(model=GPT, **ask)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) > 0
    # Oli: $1; every route of the Claude model is overloaded (Anthropic's 529, the fallback's 503)
    oli = make_user("oli", "1")
    vendors["anthropic"].script("529", times=5)
    vendors["openai"].script("503", times=5)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client_of(oli).messages.create(model=CLAUDE, **ask)
    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert balance_of(oli) == balance_of(pia) == Decimal("1") == balance_of(rae) + _cost_of_last(rae)
