"""The Anthropic and Gemini translations through the gateway, with the official OpenAI SDK:
plain and streamed replies, tool round trips, reasoning, usage and cost; fields of the wrong
shape refused before any family's translation reads them."""

from decimal import Decimal

import httpx
import openai
import pytest

from ..conftest import balance_of, make_user, native_client, usage_rows

CASES = [
    ("claude-haiku-4-5", "anthropic", Decimal("0.80"), Decimal("4.00")),
    ("gemini-2.5-pro", "gemini", Decimal("1.00"), Decimal("8.00")),
]
WEATHER_TOOL = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]


@pytest.fixture
def ivy(committed):
    # Ivy: $5, talks to every vendor family.
    return make_user("ivy", "5")


@pytest.fixture
def client(api_server, ivy):
    return openai.OpenAI(api_key=ivy.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
def test_plain_reply_usage_and_exact_cost(client, ivy, vendors, slug, vendor, price_in, price_out):
    resp = client.chat.completions.create(
        model=slug,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello vendor family"},
        ],
    )
    assert resp.model == slug
    assert resp.choices[0].message.content == "Echo: Hello vendor family"
    usage = resp.usage
    expected = (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / 1_000_000
    assert Decimal(str(usage.model_extra["cost_usd"])) == expected
    assert balance_of(ivy) == Decimal("5") - expected
    assert usage_rows(ivy)[-1].route.startswith(vendor)
    assert vendors[vendor].requests, "the request reached the vendor's own API"


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
def test_streamed_reply_with_usage(client, vendors, slug, vendor, price_in, price_out):
    chunks = list(
        client.chat.completions.create(
            model=slug,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "stream it please"}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream it please"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-1].usage.model_extra["cost_usd"] > 0


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip_through_the_translation(client, vendors, slug, vendor, price_in, price_out, stream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        calls = {}
        for chunk in client.chat.completions.create(
            model=slug, messages=messages, tools=WEATHER_TOOL, stream=True
        ):
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                slot = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
        call = calls[0]
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
    else:
        first = client.chat.completions.create(model=slug, messages=messages, tools=WEATHER_TOOL)
        assert first.choices[0].finish_reason == "tool_calls"
        tool = first.choices[0].message.tool_calls[0]
        call_id, name, arguments = tool.id, tool.function.name, tool.function.arguments
    assert name == "get_weather" and '"location"' in arguments
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model=slug, messages=messages, tools=WEATHER_TOOL)
    assert second.choices[0].message.content == "The tool said: sunny"


def test_anthropic_thinking_becomes_reasoning_content(client, vendors):
    resp = client.chat.completions.create(
        model="claude-sonnet-4-5",
        reasoning_effort="low",
        messages=[{"role": "user", "content": "think first"}],
    )
    message = resp.choices[0].message
    assert message.content == "Echo: think first"
    assert message.model_extra["reasoning_content"].startswith("Thinking about")
    assert vendors["anthropic"].requests[-1]["json"]["thinking"]["type"] in ("enabled", "adaptive")


def test_gemini_vendor_errors_map_to_catalog_codes(client, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini-2.5-pro", messages=[{"role": "user", "content": "[[fault:context]]"}]
        )
    assert caught.value.code == "context_length_exceeded"


FAMILIES = ["gpt-4o", "claude-haiku-4-5", "gemini-2.5-flash"]  # OpenAI-compatible, Anthropic, Gemini
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def turn(assistant: dict | None = None, tool: dict | None = None, user: dict | None = None) -> list[dict]:
    """A tool round trip (user, assistant's call, tool result), one message's fields replaced."""
    return [
        {"role": "user", "content": "Weather in Paris?", **(user or {})},
        {"role": "assistant", "content": None, "tool_calls": [CALL], **(assistant or {})},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny", **(tool or {})},
    ]


# (fields sent beside model and a valid tool round trip, the field the refusal names)
BAD_SHAPES = {
    "reasoning_effort as a list": ({"reasoning_effort": ["high"]}, "reasoning_effort"),
    "reasoning_effort as an object": ({"reasoning_effort": {"effort": "high"}}, "reasoning_effort"),
    "reasoning.effort as a list": ({"reasoning": {"effort": ["high"]}}, "reasoning.effort"),
    "stop as a number": ({"stop": 5}, "stop"),
    "stop as a boolean": ({"stop": True}, "stop"),
    "stop with a number in it": ({"stop": ["END", 5]}, "stop"),
    "response_format as a string": ({"response_format": "json_object"}, "response_format"),
    "response_format.json_schema as a string": (
        {"response_format": {"type": "json_schema", "json_schema": "weather"}},
        "response_format.json_schema",
    ),
    "tool_calls as an object": ({"messages": turn(assistant={"tool_calls": CALL})}, "messages[1].tool_calls"),
    "a tool call as a string": (
        {"messages": turn(assistant={"tool_calls": ["call_1"]})},
        "messages[1].tool_calls[0]",
    ),
    "a tool call's function as a string": (
        {"messages": turn(assistant={"tool_calls": [{**CALL, "function": "get_weather"}]})},
        "messages[1].tool_calls[0].function",
    ),
    "a tool call's arguments as an object": (
        {"messages": turn(assistant={"tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]})},
        "messages[1].tool_calls[0].function.arguments",
    ),
    "a tool call's id as a list": (
        {"messages": turn(assistant={"tool_calls": [{**CALL, "id": ["call_1"]}]})},
        "messages[1].tool_calls[0].id",
    ),
    "tool_call_id as a list": (
        {"messages": turn(tool={"tool_call_id": ["call_1"]})},
        "messages[2].tool_call_id",
    ),
    "a tool result's text as a number": (
        {"messages": turn(tool={"content": [{"type": "text", "text": 21}]})},
        "messages[2].content[0].text",
    ),
    "a user text part's text as an object": (
        {"messages": turn(user={"content": [{"type": "text", "text": {"value": "hi"}}]})},
        "messages[0].content[0].text",
    ),
    "an assistant text part's text as a number": (
        {"messages": turn(assistant={"content": [{"type": "text", "text": 1}]})},
        "messages[1].content[0].text",
    ),
    "a file part's file as a string": (
        {"messages": turn(user={"content": [{"type": "file", "file": "data:application/pdf;base64,AA"}]})},
        "messages[0].content[0].file",
    ),
    "a tool as a string": ({"tools": ["get_weather"]}, "tools[0]"),
    "tool_choice's function as a string": (
        {"tools": WEATHER_TOOL, "tool_choice": {"type": "function", "function": "get_weather"}},
        "tool_choice.function",
    ),
}


def chat(api_server: str, user, body: dict) -> httpx.Response:
    return httpx.post(
        f"{api_server}/v1/openai/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {user.raw_key}"},
        timeout=30,
    )


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["meta"]) == ("invalid_parameter", field, {"field": field})


@pytest.mark.parametrize("slug", FAMILIES)
@pytest.mark.parametrize("fields,field", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
def test_a_field_of_the_wrong_shape_is_a_400_naming_it_before_any_vendor_or_charge(
    api_server, ivy, vendors, slug, fields, field
):
    """Every family's translation read these shapes unchecked: a client's mistake was a 500."""
    response = chat(api_server, ivy, {"model": slug, "messages": turn(), **fields})
    assert_refused(response, field)
    assert not any(fake.requests for fake in vendors.values())
    assert balance_of(ivy) == Decimal("5")


@pytest.mark.parametrize("slug", FAMILIES)
def test_the_native_door_refuses_the_same_shapes(api_server, ivy, vendors, slug):
    with native_client(api_server, ivy) as native:
        for fields, field in BAD_SHAPES.values():
            response = native.post("/chat/completions", json={"model": slug, "messages": turn(), **fields})
            assert response.json()["success"] is False
            assert_refused(response, field)
    assert not any(fake.requests for fake in vendors.values())
    assert balance_of(ivy) == Decimal("5")


SENT_STOP = {  # where each family's translation puts the client's stop sequences
    "openai": lambda sent: sent["stop"],
    "anthropic": lambda sent: sent["stop_sequences"],
    "gemini": lambda sent: sent["generationConfig"]["stopSequences"],
}


@pytest.mark.parametrize("slug,vendor", zip(FAMILIES, ["openai", "anthropic", "gemini"]))
@pytest.mark.parametrize("stop", ["END", ["END", "STOP"]])
def test_openai_shapes_still_reach_every_family(api_server, ivy, vendors, slug, vendor, stop):
    """stop as a string or an array, and a tool result as an array of text parts (OpenAI's shape)."""
    messages = turn(tool={"content": [{"type": "text", "text": "sunny"}]})
    body = {"model": slug, "messages": messages, "stop": stop, "response_format": {"type": "text"}}
    response = chat(api_server, ivy, {**body, "tools": WEATHER_TOOL, "reasoning_effort": "low"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool said: sunny"
    as_list = [stop] if isinstance(stop, str) and vendor != "openai" else stop  # OpenAI's: as sent
    assert SENT_STOP[vendor](vendors[vendor].requests[-1]["json"]) == as_list
    assert balance_of(ivy) < Decimal("5")


def test_an_allowed_tools_choice_reaches_claude(api_server, ivy, vendors):
    """OpenAI's allowed_tools tool_choice (an object naming no function) once broke the Anthropic
    translation; Claude gets the choice left to it."""
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": WEATHER_TOOL}}
    body = {"model": "claude-haiku-4-5", "messages": turn(), "tools": WEATHER_TOOL, "tool_choice": choice}
    response = chat(api_server, ivy, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool said: sunny"
    assert vendors["anthropic"].requests[-1]["json"]["tool_choice"] == {"type": "auto"}
