"""POST /v1/llm/terminal/commands: natural language → ranked shell commands with danger labels.

The model is asked for JSON (`response_format` json_schema "terminal_commands"), and its answer
is parsed leniently (code fences, prose around the object, a bare list, alternative field names).
Each command's label is the higher of the model's own label and the local analysis
(llm.terminal.danger), so a model calling `rm -rf ~` "safe" cannot make it so.

Money: billed as a chat completion (hold, then settle at the real token cost). When the answer
holds no usable command at all nothing was delivered, so nothing is charged (the hold is released,
the usage row says error/upstream_error) and the caller gets 502 upstream_error, as for any other
upstream failure. Partial answers are billed in full: what parsed is delivered.
"""

import json
import re
from dataclasses import dataclass

from accounts.keys import Principal
from gpuniq_site.errors import ApiError

from .. import chat, gateway
from ..catalog import DEFAULT_CHAT_MODEL
from ..chat_turns import clean_text
from ..providers.base import text_of
from .danger import LEVELS, analyze, combine

SCHEMA_NAME = "terminal_commands"
MAX_PROMPT_CHARS = 4000
MAX_COMMAND_CHARS = 2000
OUTPUT_TOKENS = 2000
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


@dataclass
class CommandRequest:
    prompt: str
    max_commands: int = 5
    shell: str = "bash"
    os: str = "linux"
    model: str = DEFAULT_CHAT_MODEL


def parse_request(body: dict) -> CommandRequest:
    prompt = clean_text(body.get("prompt"), "prompt", required=True, max_chars=MAX_PROMPT_CHARS)
    count = body.get("max_commands", 5)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
        raise ApiError(
            "invalid_parameter",
            field="max_commands",
            reason="must be an integer from 1 to 10",
            meta={"field": "max_commands"},
        )
    shell = clean_text(body.get("shell"), "shell", required=False, max_chars=40) or "bash"
    os_name = clean_text(body.get("os"), "os", required=False, max_chars=40) or "linux"
    model = clean_text(body.get("model"), "model", required=False, max_chars=100) or DEFAULT_CHAT_MODEL
    return CommandRequest(prompt.strip(), count, shell.strip(), os_name.strip(), model)


def answer_schema(max_commands: int) -> dict:
    item = {
        "type": "object",
        "additionalProperties": False,
        "required": ["command", "description", "danger"],
        "properties": {
            "command": {"type": "string"},
            "description": {"type": "string"},
            "danger": {"type": "string", "enum": list(LEVELS)},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["commands"],
        "properties": {"commands": {"type": "array", "items": item, "minItems": 1, "maxItems": max_commands}},
    }


def system_prompt(req: CommandRequest) -> str:
    return (
        f"You turn a request into shell commands for {req.shell} on {req.os}. Answer with JSON only: "
        '{"commands": [{"command": "...", "description": "...", "danger": "safe|caution|dangerous"}]} '
        f"with 1 to {req.max_commands} alternative commands, best first. Each command is complete and "
        "runnable as one line; the description says in one sentence what it does. danger is 'dangerous' "
        "when it can destroy data or take a system down, 'caution' when it changes files, packages, "
        "services or permissions, else 'safe'."
    )


def chat_body(req: CommandRequest) -> dict:
    return {
        "model": req.model,
        "max_tokens": OUTPUT_TOKENS,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": system_prompt(req)},
            {"role": "user", "content": req.prompt},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": answer_schema(req.max_commands)},
        },
    }


def _json_value(text: str):
    text = _FENCE.sub("", text.strip())
    try:
        return json.loads(text)
    except ValueError:
        pass
    for start, end in (("{", "}"), ("[", "]")):
        i, j = text.find(start), text.rfind(end)
        if 0 <= i < j:
            try:
                return json.loads(text[i : j + 1])
            except ValueError:
                continue
    return None


def _items(value) -> list:
    if isinstance(value, dict):
        value = next(
            (value[k] for k in ("commands", "results", "items") if isinstance(value.get(k), list)),
            [value] if "command" in value else [],
        )
    return value if isinstance(value, list) else []


def parse_commands(text: str, limit: int) -> list[dict]:
    """The model's commands (deduplicated, at most `limit`), each labelled; [] when none is usable."""
    commands, seen = [], set()
    for item in _items(_json_value(text or "")):
        item = {"command": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            continue
        command = item.get("command") or item.get("cmd")
        if not isinstance(command, str) or not command.strip() or len(command) > MAX_COMMAND_CHARS:
            continue
        command = command.strip()
        if command in seen:
            continue
        seen.add(command)
        description = item.get("description") or item.get("explanation") or ""
        local = analyze(command)
        commands.append(
            {
                "command": command,
                "description": description if isinstance(description, str) else "",
                "danger": combine(item.get("danger") or item.get("danger_level"), local.level),
                "danger_reasons": list(local.reasons),
            }
        )
        if len(commands) == limit:
            break
    return commands


async def generate(principal: Principal, req: CommandRequest, request_id: str) -> dict:
    prepared = await chat.prepare(principal, chat_body(req), request_id=request_id, endpoint="terminal")
    async with chat.Bill(prepared, sent=True) as bill:
        done = await gateway.complete(prepared.request, prepared.model)
        message = ((done.response.get("choices") or [{}])[0]).get("message") or {}
        commands = parse_commands(text_of(message.get("content")), req.max_commands)
        if not commands:
            await bill.settle(None, route=done.route, status="error", error_code="upstream_error")
            raise ApiError(
                "upstream_error", reason="the model did not answer with commands in the expected JSON format."
            )
        usage = done.usage or chat.usage_from_text(prepared, len(text_of(message.get("content"))))
        settled = await bill.settle(usage, route=done.route)
    return {
        "commands": commands,
        "model": prepared.model.slug,
        "tokens_used": usage.total_tokens,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": float(settled.cost),
        "balance_usd": float(settled.balance),
    }
