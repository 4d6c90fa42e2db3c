"""Wire-format checks for the fake chat vendors in tests/fakes (loopback only)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import FAULTS, closed_port_url, count_tokens
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_compat import FakeOpenAI

OA_H = {"authorization": "Bearer test-key"}
AN_H = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
GM_H = {"x-goog-api-key": "test-key"}
WEATHER_TOOL_OA = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """Split a raw SSE body into (event, data) pairs (handles LF and CRLF)."""
    out = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        out.append((event, "\n".join(data)))
    return out


@pytest.fixture(scope="module")
def oa():
    with FakeOpenAI(slow_seconds=0.3) as s:
        yield s


@pytest.fixture(scope="module")
def an():
    with FakeAnthropic() as s:
        yield s


@pytest.fixture(scope="module")
def gm():
    with FakeGemini() as s:
        yield s


@pytest.fixture(autouse=True)
def _reset(request):
    for name in ("oa", "an", "gm"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def oa_chat(s, stream=False, **body):
    body.setdefault("model", "gpt-4o-mini")
    body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
    return httpx.post(
        s.base_url + "/v1/chat/completions", headers=OA_H, json={**body, "stream": stream}, timeout=10
    )


# ----------------------------------------------------------------------------- common
def test_count_tokens_and_fault_names():
    assert count_tokens("a b  c\nd") == 4 and count_tokens("") == 0
    assert {
        "500",
        "503",
        "529",
        "429",
        "400",
        "401",
        "context",
        "slow_first_byte",
        "stall",
        "cutoff",
        "malformed",
        "no_usage",
        "refuse",
    } <= FAULTS


def test_closed_port_refuses():
    with pytest.raises(httpx.ConnectError):
        httpx.get(closed_port_url(), timeout=2)


# ----------------------------------------------------------------------------- OpenAI
def test_openai_non_stream_and_log(oa):
    r = oa_chat(
        oa, messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "Hello there"}]
    )
    assert r.status_code == 200 and r.headers["x-request-id"]
    j = r.json()
    assert j["object"] == "chat.completion" and j["id"].startswith("chatcmpl-")
    choice = j["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Echo: Hello there",
        "refusal": None,
        "annotations": [],
    }
    assert choice["finish_reason"] == "stop"
    assert j["usage"]["prompt_tokens"] == (2 + 3) + (2 + 3)
    assert j["usage"]["completion_tokens"] == 3 and j["usage"]["total_tokens"] == 13
    log = oa.requests
    assert (
        log[-1]["path"] == "/v1/chat/completions" and log[-1]["headers"]["authorization"] == "Bearer test-key"
    )
    assert log[-1]["json"]["model"] == "gpt-4o-mini"
    assert httpx.get(oa.base_url + "/_control/requests").json()["requests"][-1]["method"] == "POST"


def test_openai_auth_and_validation(oa):
    r = httpx.post(
        oa.base_url + "/v1/chat/completions",
        headers={"authorization": "Bearer nope"},
        json={"model": "m", "messages": []},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = oa_chat(oa, messages=[])
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    models = httpx.get(oa.base_url + "/v1/models", headers=OA_H).json()
    assert models["object"] == "list" and models["data"][0]["object"] == "model"


def test_openai_stream_framing_with_usage(oa):
    r = oa_chat(
        oa,
        stream=True,
        messages=[{"role": "user", "content": "one two three"}],
        stream_options={"include_usage": True},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.endswith("data: [DONE]\n\n")
    events = [d for _, d in sse_events(r.text)]
    chunks = [json.loads(d) for d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]][-1] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    # without include_usage: no usage key and no usage chunk
    r = oa_chat(oa, stream=True)
    chunks = [json.loads(d) for _, d in sse_events(r.text)[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_openai_tools_reasoning_cached(oa):
    msgs = [{"role": "user", "content": "What is the weather? [[cached]]"}]
    j = oa_chat(oa, model="deepseek-reasoner", messages=msgs, tools=[WEATHER_TOOL_OA]).json()
    msg = j["choices"][0]["message"]
    assert j["choices"][0]["finish_reason"] == "tool_calls" and msg["content"] is None
    call = msg["tool_calls"][0]
    assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert msg["reasoning_content"].startswith("Thinking about:")
    u = j["usage"]
    assert u["completion_tokens_details"]["reasoning_tokens"] == count_tokens(msg["reasoning_content"])
    assert u["prompt_tokens_details"]["cached_tokens"] == u["prompt_tokens"] // 2 > 0
    # streamed tool call: id/name first, then argument fragments
    r = oa_chat(oa, stream=True, messages=msgs, tools=[WEATHER_TOOL_OA])
    deltas = [json.loads(d)["choices"][0]["delta"] for _, d in sse_events(r.text)[:-1]]
    tcs = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert tcs[0]["id"].startswith("call_") and tcs[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert json.loads("".join(t["function"]["arguments"] for t in tcs)) == {"location": "Paris"}
    # tool result -> text
    msgs += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny 21C"},
    ]
    j = oa_chat(oa, messages=msgs, tools=[WEATHER_TOOL_OA]).json()
    assert j["choices"][0]["message"]["content"] == "The tool said: Sunny 21C"
    forced = oa_chat(oa, tools=[WEATHER_TOOL_OA], tool_choice="required").json()
    assert forced["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_max_tokens(oa):
    j = oa_chat(oa, max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]).json()
    assert j["choices"][0]["message"]["content"] == "Echo: a" and j["choices"][0]["finish_reason"] == "length"


def test_openai_error_faults(oa):
    oa.script("429")
    r = oa_chat(oa)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert oa_chat(oa).status_code == 200  # script consumed
    r = oa_chat(oa, messages=[{"role": "user", "content": "boom [[fault:500]]"}])
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert (
        httpx.post(oa.base_url + "/_control/script", json={"fault": "context", "times": 2}).status_code == 200
    )
    for _ in range(2):
        r = oa_chat(oa, stream=True)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert oa_chat(oa).status_code == 200
    assert httpx.post(oa.base_url + "/_control/script", json={"fault": "bogus"}).status_code == 400


def test_openai_transport_faults(oa):
    oa.script("malformed")
    with pytest.raises(json.JSONDecodeError):
        oa_chat(oa).json()
    oa.script("malformed")
    datas = [d for _, d in sse_events(oa_chat(oa, stream=True).text)]
    bad = [d for d in datas if d != "[DONE]" and not _is_json(d)]
    assert len(bad) == 1 and datas[-1] == "[DONE]"
    oa.script("no_usage")
    assert "usage" not in oa_chat(oa).json()
    oa.script("cutoff")
    seen = []
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream(
            "POST",
            oa.base_url + "/v1/chat/completions",
            headers=OA_H,
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c d e"}]},
        ) as r:
            for line in r.iter_lines():
                seen.append(line)
    assert seen and "data: [DONE]" not in seen
    oa.script("refuse")
    with pytest.raises(httpx.RemoteProtocolError):
        oa_chat(oa)
    oa.script("midstream_error")
    datas = [d for _, d in sse_events(oa_chat(oa, stream=True).text)]
    assert "error" in json.loads(datas[-1]) and "[DONE]" not in datas
    oa.script("slow_first_byte")
    t0 = time.monotonic()
    assert oa_chat(oa).status_code == 200 and time.monotonic() - t0 >= 0.3
    assert oa.disconnects == 0


def _is_json(s):
    try:
        json.loads(s)
        return True
    except ValueError:
        return False


def test_openai_stall_and_disconnect_tracking():
    with FakeOpenAI(chunk_delay=0.05) as s:
        words = " ".join(f"w{i}" for i in range(40))
        with httpx.stream(
            "POST",
            s.base_url + "/v1/chat/completions",
            headers=OA_H,
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": words}]},
        ) as r:
            next(r.iter_lines())
        assert s.wait_for_disconnects(1)
        s.script("stall")
        with pytest.raises(httpx.ReadTimeout):
            with httpx.stream(
                "POST",
                s.base_url + "/v1/chat/completions",
                headers=OA_H,
                timeout=0.5,
                json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            ) as r:
                for _ in r.iter_lines():
                    pass
        assert s.wait_for_disconnects(2)


def test_stop_does_not_hang_on_stalled_stream():
    s = FakeOpenAI().start()
    s.script("stall")
    sock = socket.create_connection(("127.0.0.1", s.port))
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert b"200" in sock.recv(100)
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 5
    sock.close()


def test_openai_sdk_parses_fake():
    openai = pytest.importorskip("openai")
    with FakeOpenAI() as s:
        client = openai.OpenAI(api_key="test-key", base_url=s.api_base, max_retries=0)
        resp = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "Echo: hi" and resp.usage.total_tokens == 6
        stream = client.chat.completions.create(
            model="gpt-4o",
            stream=True,
            stream_options={"include_usage": True},
            tools=[WEATHER_TOOL_OA],
            messages=[{"role": "user", "content": "weather?"}],
        )
        chunks = list(stream)
        args = "".join(
            tc.function.arguments or ""
            for c in chunks
            if c.choices
            for tc in c.choices[0].delta.tool_calls or []
        )
        assert json.loads(args) == {"location": "Paris"} and chunks[-1].usage.prompt_tokens == 4
        s.script("429")
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


# ----------------------------------------------------------------------------- Anthropic
def an_msg(s, stream=False, **body):
    body.setdefault("model", "claude-sonnet-4-5")
    body.setdefault("max_tokens", 1024)
    body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
    return httpx.post(s.base_url + "/v1/messages", headers=AN_H, json={**body, "stream": stream}, timeout=10)


def test_anthropic_non_stream_and_auth(an):
    j = an_msg(an, system="be brief").json()
    assert j["type"] == "message" and j["role"] == "assistant" and j["id"].startswith("msg_")
    assert j["content"] == [{"type": "text", "text": "Echo: Hello there"}]
    assert j["stop_reason"] == "end_turn" and j["stop_sequence"] is None
    assert j["usage"]["input_tokens"] == 10 and j["usage"]["output_tokens"] == 3
    r = httpx.post(
        an.base_url + "/v1/messages", headers={"x-api-key": "bad", "anthropic-version": "2023-06-01"}, json={}
    )
    assert r.status_code == 401 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "authentication_error" and r.json()["request_id"]
    r = httpx.post(an.base_url + "/v1/messages", headers={"x-api-key": "test-key"}, json={})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(an.base_url + "/v1/messages", headers=AN_H, json={"model": "c", "messages": []})
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]


def test_anthropic_stream_text(an):
    r = an_msg(an, stream=True, max_tokens=3, messages=[{"role": "user", "content": "a b c d [[cached]]"}])
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert all(json.loads(d)["type"] == e for e, d in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = json.loads(events[0][1])["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    u = start["usage"]
    assert u["cache_read_input_tokens"] == (5 + 3) // 2 and u["input_tokens"] == 8 - 4
    text = "".join(json.loads(d)["delta"]["text"] for e, d in events if e == "content_block_delta")
    assert text == "Echo: a b"
    delta = json.loads(events[-2][1])
    assert delta["delta"]["stop_reason"] == "max_tokens" and delta["usage"]["output_tokens"] == 3


def test_anthropic_thinking_and_tools(an):
    tools = [
        {"name": "get_weather", "input_schema": {"type": "object"}},
        {"name": "other", "input_schema": {}},
    ]
    body = dict(
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=tools,
        messages=[{"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]}],
    )
    j = an_msg(an, **body).json()
    assert [b["type"] for b in j["content"]] == ["thinking", "tool_use"] and j["stop_reason"] == "tool_use"
    assert j["content"][0]["signature"]
    tu = j["content"][1]
    assert (
        tu["id"].startswith("toolu_") and tu["name"] == "get_weather" and tu["input"] == {"location": "Paris"}
    )
    events = sse_events(an_msg(an, stream=True, **body).text)
    deltas = [json.loads(d)["delta"] for e, d in events if e == "content_block_delta"]
    kinds = {d["type"] for d in deltas}
    assert kinds == {"thinking_delta", "signature_delta", "input_json_delta"}
    assert json.loads("".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")) == {
        "location": "Paris"
    }
    starts = [json.loads(d)["content_block"] for e, d in events if e == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": starts[1]["id"], "name": "get_weather", "input": {}}
    follow = body["messages"] + [
        {"role": "assistant", "content": j["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu["id"], "content": "Rainy"}]},
    ]
    j2 = an_msg(an, tools=tools, messages=follow).json()
    assert j2["content"] == [{"type": "text", "text": "The tool said: Rainy"}]
    j3 = an_msg(an, tools=tools, tool_choice={"type": "tool", "name": "other"}).json()
    assert j3["content"][0]["name"] == "other"


def test_anthropic_faults(an):
    an.script("529")
    r = an_msg(an)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    r = an_msg(an, messages=[{"role": "user", "content": "x [[fault:429]]"}])
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["type"] == "rate_limit_error"
    an.script("context")
    r = an_msg(an)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("prompt is too long")
    an.script("midstream_error")
    events = sse_events(an_msg(an, stream=True).text)
    assert events[-1][0] == "error" and json.loads(events[-1][1])["error"]["type"] == "overloaded_error"
    assert "message_stop" not in [e for e, _ in events]
    an.script("no_usage")
    assert "usage" not in an_msg(an).json()


# ----------------------------------------------------------------------------- Gemini
def gm_gen(s, stream=False, model="gemini-2.5-flash", headers=GM_H, **body):
    body.setdefault("contents", [{"role": "user", "parts": [{"text": "Hello there"}]}])
    url = f"{s.base_url}/v1beta/models/{model}:" + (
        "streamGenerateContent?alt=sse" if stream else "generateContent"
    )
    return httpx.post(url, headers=headers, json=body, timeout=10)


def test_gemini_non_stream_and_auth(gm):
    j = gm_gen(gm, systemInstruction={"parts": [{"text": "be brief"}]}).json()
    cand = j["candidates"][0]
    assert cand["content"] == {"parts": [{"text": "Echo: Hello there"}], "role": "model"}
    assert cand["finishReason"] == "STOP"
    u = j["usageMetadata"]
    assert u["promptTokenCount"] == 10 and u["candidatesTokenCount"] == 3 and u["totalTokenCount"] == 13
    r = httpx.post(
        f"{gm.base_url}/v1beta/models/gemini-2.5-flash:generateContent?key=test-key",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    )
    assert r.status_code == 200
    r = gm_gen(gm, headers={"x-goog-api-key": "wrong"})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert gm_gen(gm, headers={}).status_code == 403
    gm.script("401")
    r = gm_gen(gm)
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_gemini_stream_thoughts_cached_max_tokens(gm):
    r = gm_gen(
        gm,
        stream=True,
        contents=[{"role": "user", "parts": [{"text": "one two three [[cached]]"}]}],
        generationConfig={"maxOutputTokens": 3, "thinkingConfig": {"includeThoughts": True}},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "\r\n\r\n" in r.text and "[DONE]" not in r.text
    chunks = [json.loads(d) for _, d in sse_events(r.text)]
    parts = [c["candidates"][0]["content"]["parts"][0] for c in chunks]
    assert "".join(p["text"] for p in parts if p.get("thought")).startswith("Thinking about:")
    assert "".join(p["text"] for p in parts if not p.get("thought")) == "Echo: one two"
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    u = chunks[-1]["usageMetadata"]
    assert u["cachedContentTokenCount"] == u["promptTokenCount"] // 2 and u["thoughtsTokenCount"] > 0
    assert u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"] + u["thoughtsTokenCount"]
    # thinkingConfig without includeThoughts: tokens counted, no thought parts
    j = gm_gen(gm, generationConfig={"thinkingConfig": {"thinkingBudget": 512}}).json()
    assert all(not p.get("thought") for p in j["candidates"][0]["content"]["parts"])
    assert j["usageMetadata"]["thoughtsTokenCount"] > 0


def test_gemini_function_calling(gm):
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT"}}]}]
    contents = [{"role": "user", "parts": [{"text": "weather in Paris"}]}]
    j = gm_gen(gm, tools=tools, contents=contents).json()
    part = j["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {"name": "get_weather", "args": {"location": "Paris"}}
    assert j["candidates"][0]["finishReason"] == "STOP"
    chunks = [
        json.loads(d) for _, d in sse_events(gm_gen(gm, stream=True, tools=tools, contents=contents).text)
    ]
    assert chunks[-1]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    contents += [
        {"role": "model", "parts": [part]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "Foggy"}}}],
        },
    ]
    j = gm_gen(gm, tools=tools, contents=contents).json()
    assert j["candidates"][0]["content"]["parts"][0]["text"] == "The tool said: Foggy"
    j = gm_gen(gm, tools=tools, toolConfig={"functionCallingConfig": {"mode": "ANY"}}).json()
    assert "functionCall" in j["candidates"][0]["content"]["parts"][0]


def test_gemini_faults(gm):
    gm.script("429")
    r = gm_gen(gm)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    r = gm_gen(gm, contents=[{"role": "user", "parts": [{"text": "[[fault:context]]"}]}])
    assert r.status_code == 400 and "input token count" in r.json()["error"]["message"]
    gm.script("503")
    assert gm_gen(gm, stream=True).json()["error"]["status"] == "UNAVAILABLE"
    gm.script("malformed")
    datas = [d for _, d in sse_events(gm_gen(gm, stream=True).text)]
    assert sum(not _is_json(d) for d in datas) == 1
    gm.script("no_usage")
    assert "usageMetadata" not in gm_gen(gm).json()


def test_fakes_concurrent_inband_faults(oa):
    results = {}

    def worker(i):
        content = f"req {i} [[fault:500]]" if i % 2 else f"req {i}"
        results[i] = oa_chat(oa, messages=[{"role": "user", "content": content}]).status_code

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(10)] == [200, 500] * 5
