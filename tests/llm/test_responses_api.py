"""POST /v1/openai/responses with the official OpenAI SDK, over a socket, against the fakes: an
OpenAI model forwards to the vendor's Responses API, an Anthropic model is translated; replies,
typed event streams, tools with previous_response_id, JSON schema, stored responses, money."""

import json
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import LedgerEntry
from llm.models import StoredResponse

from ..conftest import balance_of, make_user, usage_rows

PRICES = {
    "gpt-4o": (Decimal("2.00"), Decimal("8.00")),
    "claude-haiku-4-5": (Decimal("0.80"), Decimal("4.00")),
}
MODELS = ["gpt-4o", "claude-haiku-4-5"]  # the pass-through and a translation
VENDORS = {"gpt-4o": "openai", "claude-haiku-4-5": "anthropic"}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture
def erin(committed):
    # Erin: $5, uses the Responses API.
    return make_user("erin", "5")


@pytest.fixture
def frank(committed):
    # Frank: $5, sends the same prompts through Chat Completions, to compare the bills.
    return make_user("frank", "5")


def sdk(server, user):
    return openai.OpenAI(api_key=user.raw_key, base_url=f"{server}/v1/openai", max_retries=0)


def cost(model: str, prompt: int, completion: int) -> Decimal:
    price_in, price_out = PRICES[model]
    return (prompt * price_in + completion * price_out) / 1_000_000


@pytest.mark.parametrize("model", MODELS)
def test_plain_response_is_billed_like_the_same_chat_completion(api_server, erin, frank, vendors, model):
    resp = sdk(api_server, erin).responses.create(model=model, input="Hello gateway")

    assert resp.object == "response" and resp.id.startswith("resp_") and resp.status == "completed"
    assert resp.model == model and resp.output_text == "Echo: Hello gateway"
    [message] = [item for item in resp.output if item.type == "message"]
    assert message.role == "assistant" and message.content[0].type == "output_text"
    [row] = usage_rows(erin)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (row.prompt_tokens, row.completion_tokens)
    assert resp.usage.total_tokens == row.prompt_tokens + row.completion_tokens
    assert row.endpoint == "responses" and row.status == "ok"
    expected = cost(model, row.prompt_tokens, row.completion_tokens)
    assert row.cost_usd == expected and Decimal(str(resp.usage.model_extra["cost_usd"])) == expected
    assert balance_of(erin) == Decimal(5) - expected
    assert LedgerEntry.objects.get(account=erin.account, kind="charge").amount == -expected

    chat = sdk(api_server, frank).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello gateway"}]
    )
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (
        row.prompt_tokens,
        row.completion_tokens,
    )
    assert balance_of(frank) == balance_of(erin)


def test_an_openai_model_goes_to_the_vendors_responses_api(api_server, erin, vendors):
    sdk(api_server, erin).responses.create(
        model="gpt-4o",
        input="forward me",
        instructions="Be brief.",
        metadata={"trace": "t1"},
        max_output_tokens=50,
    )
    sent = vendors["openai"].requests[-1]
    assert sent["path"] == "/v1/responses"
    assert sent["json"]["model"] == "gpt-4o" and sent["json"]["instructions"] == "Be brief."
    assert sent["json"]["metadata"] == {"trace": "t1"} and sent["json"]["max_output_tokens"] == 50
    assert sent["json"]["store"] is False  # conversations are kept here, not at the vendor


def test_an_anthropic_model_gets_a_translated_messages_request(api_server, erin, vendors):
    resp = sdk(api_server, erin).responses.create(
        model="claude-haiku-4-5",
        instructions="Be brief.",
        max_output_tokens=50,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "translate me"}]}],
    )
    sent = vendors["anthropic"].requests[-1]["json"]
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["max_tokens"] == 50 and sent["messages"][-1]["role"] == "user"
    assert resp.output_text == "Echo: translate me"


@pytest.mark.parametrize("model", MODELS)
def test_stream_sends_the_typed_events_in_order_and_bills_once(api_server, erin, vendors, model):
    events = list(
        sdk(api_server, erin).responses.create(model=model, input="stream these words", stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:5] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-5:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ][-5:] or kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: stream these words"
    final = events[-1].response
    assert final.status == "completed" and final.output_text == text and final.id == events[0].response.id
    [row] = usage_rows(erin)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (row.prompt_tokens, row.completion_tokens)
    assert Decimal(str(final.usage.model_extra["cost_usd"])) == row.cost_usd
    assert balance_of(erin) == Decimal(5) - row.cost_usd


def test_raw_stream_framing_has_event_lines_and_no_done(api_server, erin, vendors):
    with httpx.stream(
        "POST",
        f"{api_server}/v1/openai/responses",
        headers={"Authorization": f"Bearer {erin.raw_key}"},
        json={"model": "claude-haiku-4-5", "input": "a b", "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    frames = [f for f in body.split("\n\n") if f and not f.startswith(":")]
    for frame in frames:
        event, data = frame.split("\n", 1)
        assert event.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == event[7:]
    assert "[DONE]" not in body


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_round_trip_with_previous_response_id(api_server, erin, vendors, model):
    client = sdk(api_server, erin)
    first = client.responses.create(model=model, input="What is the weather in Paris?", tools=[WEATHER_TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}],
    )
    assert second.output_text == "The tool said: sunny, 21C"
    assert second.previous_response_id == first.id
    assert len(usage_rows(erin)) == 2


@pytest.mark.parametrize("model", MODELS)
def test_tool_choice_and_a_stateless_item_history(api_server, erin, vendors, model):
    """tool_choice reaches the vendor in its own form; a conversation sent whole as input items
    (message, function_call, function_call_output; store=False, as agents send it) is understood."""
    client = sdk(api_server, erin)
    forced = client.responses.create(
        model=model,
        input="hello there",  # no reason to call the tool but the tool_choice
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
        store=False,
    )
    [call] = [item for item in forced.output if item.type == "function_call"]
    sent = vendors[VENDORS[model]].requests[-1]["json"]
    assert sent["tool_choice"] == (
        {"type": "function", "name": "get_weather"}
        if model == "gpt-4o"
        else {"type": "tool", "name": "get_weather"}
    )
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"},
    ]
    answer = client.responses.create(
        model=model, input=history, tools=[WEATHER_TOOL], tool_choice="none", store=False
    )
    assert answer.output_text == "The tool said: rainy"
    sent = vendors[VENDORS[model]].requests[-1]["json"]
    if model == "gpt-4o":  # forwarded as sent
        assert sent["input"] == history and sent["tool_choice"] == "none"
    else:  # Anthropic's tool_use and tool_result blocks
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["messages"][1]["content"][-1]["type"] == "tool_use"
        result = sent["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id
        assert sent["tool_choice"] == {"type": "none"}
    assert not StoredResponse.objects.filter(pk__in=[forced.id, answer.id]).exists()


@pytest.mark.parametrize(
    "model,vendor",
    [("gpt-5", "openai"), ("claude-opus-4-6", "anthropic"), ("gemini-2.5-flash", "gemini")],
)
def test_reasoning_effort_reaches_the_vendor_in_its_own_form(api_server, erin, vendors, model, vendor):
    resp = sdk(api_server, erin).responses.create(
        model=model, input="think hard", reasoning={"effort": "high"}, max_output_tokens=4000
    )
    assert resp.output_text == "Echo: think hard" and resp.reasoning.effort == "high"
    sent = vendors[vendor].requests[-1]["json"]
    if vendor == "openai":  # OpenAI's own Responses API: as sent
        assert sent["reasoning"] == {"effort": "high"}
    elif vendor == "anthropic":
        assert sent["thinking"]["type"] in ("enabled", "adaptive")
    else:
        assert sent["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 24576


@pytest.mark.parametrize("model", MODELS)
def test_streamed_function_call_arguments(api_server, erin, vendors, model):
    events = list(
        sdk(api_server, erin).responses.create(
            model=model, input="What is the weather in Paris?", tools=[WEATHER_TOOL], stream=True
        )
    )
    added = next(
        e for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"
    )
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert added.item.name == "get_weather" and json.loads(deltas) == {"location": "Paris"} == json.loads(
        done.arguments
    )
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[-1].call_id == added.item.call_id


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 3}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TRIP_FORMAT = {"format": {"type": "json_schema", "name": "trip", "schema": SCHEMA, "strict": True}}


def test_json_schema_text_format(api_server, erin, vendors):
    resp = sdk(api_server, erin).responses.create(model="gpt-4o", input="Lyon", text=TRIP_FORMAT)
    assert json.loads(resp.output_text) == {"city": "Lyon", "days": 3}
    assert vendors["openai"].requests[-1]["json"]["text"] == TRIP_FORMAT


def test_json_schema_text_format_becomes_the_vendors_structured_output(api_server, erin, vendors):
    sdk(api_server, erin).responses.create(model="claude-haiku-4-5", input="Lyon", text=TRIP_FORMAT)
    sent = vendors["anthropic"].requests[-1]["json"]
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert sent["output_config"]["format"]["schema"]["required"] == ["city", "days"]


def test_stored_responses_belong_to_their_user(api_server, erin, bob, vendors):
    client = sdk(api_server, erin)
    resp = client.responses.create(model="claude-haiku-4-5", input="keep me")
    assert client.responses.retrieve(resp.id).output_text == "Echo: keep me"
    assert StoredResponse.objects.get(pk=resp.id).user_id == erin.pk

    with pytest.raises(openai.NotFoundError) as seen:
        sdk(api_server, bob).responses.retrieve(resp.id)
    error = seen.value.body
    assert error["code"] == "response_not_found" and "param" in error
    with pytest.raises(openai.NotFoundError):
        sdk(api_server, bob).responses.create(
            model="claude-haiku-4-5", input="hi", previous_response_id=resp.id
        )
    with pytest.raises(openai.NotFoundError):
        sdk(api_server, bob).responses.delete(resp.id)

    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_store_false_keeps_nothing(api_server, erin, vendors):
    client = sdk(api_server, erin)
    resp = client.responses.create(model="claude-haiku-4-5", input="forget me", store=False)
    assert resp.store is False and not StoredResponse.objects.filter(pk=resp.id).exists()


def test_errors_use_the_openai_envelope_and_charge_nothing(api_server, erin, vendors):
    client = sdk(api_server, erin)
    with pytest.raises(openai.NotFoundError) as seen:
        client.responses.create(model="no-such-model", input="hi")
    assert seen.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as seen:
        client.responses.create(model="gpt-4o", input=[{"type": "message", "role": "wizard", "content": "x"}])
    assert seen.value.body["param"] == "input[0].role"
    vendors["openai"].script("500", times=2)
    with pytest.raises(openai.APIStatusError):
        client.responses.create(model="gpt-4o", input="fail")
    assert balance_of(erin) == Decimal(5)


def test_the_quick_start_shows_codex_set_up(client, committed):
    from html import unescape

    from django.urls import reverse

    page = unescape(client.get(reverse("quickstart")).content.decode())
    assert "Codex CLI" in page and 'model_provider = "gpuniq"' in page
    assert 'wire_api = "responses"' in page and "/v1/openai" in page


def test_a_long_non_streamed_reply_asks_for_streaming_in_the_responses_fields_name(api_server, erin, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(api_server, erin).responses.create(model="gpt-4o", input="x", max_output_tokens=8000)
    assert caught.value.code == "streaming_required"
    assert caught.value.body["message"].startswith("max_output_tokens=8000 is above 4096")
    assert vendors["openai"].requests == [] and balance_of(erin) == Decimal("5")
