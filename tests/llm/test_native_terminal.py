"""POST /v1/llm/terminal/commands over a socket: the JSON-schema request to the model, lenient
parsing, the danger label (model's vs local analysis), billing, and bad answers costing nothing.

The fake OpenAI-compatible vendor answers json_schema requests with a sample object built from the
prompt (tests/fakes/openai_compat.sample_json); `structured_claude` gives the fake Anthropic vendor
the same rule for `output_config.format` (Claude's structured output), so the default model works.
"""

import json
from decimal import Decimal

import httpx
import pytest

from billing.models import Hold
from llm.terminal.generate import parse_commands

from ..conftest import balance_of, usage_rows
from ..fakes.openai_compat import structured_answer

HAIKU_IN, HAIKU_OUT = Decimal("0.80"), Decimal("4.00")
GPT4O_IN, GPT4O_OUT = Decimal("2.00"), Decimal("8.00")


@pytest.fixture
def structured_claude(vendors, monkeypatch):
    """The fake Anthropic vendor answers `output_config.format` json_schema requests like the OpenAI fake."""
    fake = vendors["anthropic"]
    serve = fake.serve_completion

    async def serve_structured(conn, req, plan, fault, stream):
        fmt = ((req.json or {}).get("output_config") or {}).get("format") or {}
        if fmt.get("type") == "json_schema" and not plan.is_tool:
            content = next((m["content"] for m in reversed(req.json["messages"]) if m["role"] == "user"), "")
            text = content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
            structured_answer(plan, fmt.get("schema"), text)
        await serve(conn, req, plan, fault, stream)

    monkeypatch.setattr(fake, "serve_completion", serve_structured)
    return fake


@pytest.fixture
def post(api_server, alice):
    def call(body):
        return httpx.post(
            f"{api_server}/v1/llm/terminal/commands",
            json=body,
            headers={"X-API-Key": alice.raw_key},
            timeout=30,
        )

    return call


def test_default_model_answers_with_labelled_commands_billed_as_a_completion(post, alice, structured_claude):
    prompt = "find all Python files larger than 1MB and sort by size"
    r = post({"prompt": prompt, "max_commands": 3, "shell": "zsh", "os": "macOS"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["commands"] == [
        {"command": prompt, "description": prompt, "danger": "safe", "danger_reasons": []}
    ]
    sent = structured_claude.requests[-1]["json"]
    assert sent["model"] == "claude-haiku-4-5-20251001"
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert sent["output_config"]["format"]["schema"]["required"] == ["commands"]
    assert "zsh on macOS" in sent["system"] and "1 to 3" in sent["system"]
    assert len(sent["messages"]) == 1 and prompt in json.dumps(sent["messages"][0]["content"])
    [row] = usage_rows(alice)
    assert (row.endpoint, row.model, row.status) == ("terminal", "claude-haiku-4-5", "ok")
    expected = (row.prompt_tokens * HAIKU_IN + row.completion_tokens * HAIKU_OUT) / 1_000_000
    assert row.cost_usd == expected > 0 and data["cost_usd"] == float(expected)
    answer = json.dumps({"commands": [{"command": prompt, "description": prompt, "danger": "safe"}]})
    assert row.completion_tokens == len(answer.split())  # the fake's tokenizer: words
    assert balance_of(alice) == Decimal("10") - expected


def test_the_local_analysis_overrides_a_model_that_calls_a_dangerous_command_safe(post, alice, vendors):
    r = post({"prompt": "rm -rf ~", "model": "gpt-4o"})
    [command] = r.json()["data"]["commands"]
    assert (command["command"], command["danger"]) == ("rm -rf ~", "dangerous")
    assert command["danger_reasons"] and "recursive delete" in command["danger_reasons"][0]
    sent = vendors["openai"].requests[-1]["json"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "terminal_commands"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["commands"]["maxItems"] == 5
    assert sent["messages"][-1] == {"role": "user", "content": "rm -rf ~"}
    [row] = usage_rows(alice)
    assert row.cost_usd == (row.prompt_tokens * GPT4O_IN + row.completion_tokens * GPT4O_OUT) / 1_000_000


def test_an_answer_without_commands_is_a_502_and_costs_nothing(post, alice, vendors):
    r = post({"prompt": "list files"})  # the plain fake Claude echoes text instead of JSON
    assert (r.status_code, r.json()["error"]["code"]) == (502, "upstream_error")
    assert "expected JSON format" in r.json()["error"]["message"]
    assert balance_of(alice) == Decimal("10")
    [row] = usage_rows(alice)
    assert (row.status, row.error_code, row.cost_usd) == ("error", "upstream_error", 0)
    assert not Hold.objects.filter(account=alice.account, status=Hold.OPEN).exists()


def test_upstream_failures_cost_nothing(post, alice, vendors):
    r = post(
        {"prompt": "[[fault:500]] list files", "model": "deepseek-ocr"}
    )  # one route: no cool-down to leak
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
    assert balance_of(alice) == Decimal("10")


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "missing_parameter"),
        ({"prompt": "  "}, "invalid_parameter"),
        ({"prompt": 3}, "invalid_parameter"),
        ({"prompt": "x" * 4001}, "invalid_parameter"),
        ({"prompt": "ls", "max_commands": 0}, "invalid_parameter"),
        ({"prompt": "ls", "max_commands": 11}, "invalid_parameter"),
        ({"prompt": "ls", "max_commands": "5"}, "invalid_parameter"),
        ({"prompt": "ls", "max_commands": True}, "invalid_parameter"),
        ({"prompt": "ls", "shell": ["bash"]}, "invalid_parameter"),
        ({"prompt": "ls", "model": "nano-banana"}, "wrong_model_kind"),
        ({"prompt": "ls", "model": "nope"}, "model_not_found"),
    ],
)
def test_invalid_requests_are_rejected_before_any_upstream_call(post, vendors, body, code):
    r = post(body)
    assert r.json()["error"]["code"] == code
    assert not vendors["openai"].requests and not vendors["anthropic"].requests


# --- parsing (no server) ----------------------------------------------------------------------


def test_parsing_is_lenient_about_the_wrapping():
    one = {"command": "ls -la", "description": "list", "danger": "safe"}
    for text in [
        json.dumps({"commands": [one]}),
        "```json\n" + json.dumps({"commands": [one]}) + "\n```",
        "Here you go:\n" + json.dumps({"commands": [one]}) + "\nEnjoy!",
        json.dumps([one]),
        json.dumps({"results": [{"cmd": "ls -la", "explanation": "list"}]}),
        json.dumps(one),
    ]:
        [parsed] = parse_commands(text, 5)
        assert (parsed["command"], parsed["description"], parsed["danger"]) == ("ls -la", "list", "safe"), (
            text
        )


def test_parsing_keeps_order_drops_duplicates_and_junk_and_caps_the_count():
    items = [
        {"command": "ls"},
        {"command": "ls"},
        {"command": ""},
        {"nope": 1},
        7,
        "du -sh *",
        {"command": "sudo reboot", "danger": "caution"},
        {"command": "git status", "danger": "bogus"},
        {"command": "rm -rf /", "danger": "DANGEROUS"},
    ]
    parsed = parse_commands(json.dumps({"commands": items}), 3)
    assert [(c["command"], c["danger"]) for c in parsed] == [
        ("ls", "safe"),
        ("du -sh *", "safe"),
        ("sudo reboot", "dangerous"),
    ]
    assert [c["danger"] for c in parse_commands(json.dumps({"commands": items}), 10)][-2:] == [
        "safe",
        "dangerous",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Echo: list files",
        "{broken",
        "[]",
        '{"commands": "ls"}',
        "null",
        json.dumps({"commands": [{"command": "x" * 2001}]}),
    ],
)
def test_unusable_answers_parse_to_nothing(text):
    assert parse_commands(text, 5) == []


def test_sandbox_answers_structured_requests_with_json_matching_the_schema():
    import json

    from llm.providers.base import ChatRequest
    from llm.providers.sandbox import _reply_words
    from llm.terminal.generate import SCHEMA_NAME, answer_schema

    body = {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": "list big files"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": answer_schema(3)},
        },
    }
    answer = json.loads("".join(_reply_words(ChatRequest(body=body, slug="claude-haiku-4-5", stream=False))))
    [command] = answer["commands"]
    assert command["command"].startswith("echo ") and command["danger"] == "safe"
