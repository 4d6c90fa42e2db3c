"""Real Responses API clients through the gateway on a socket, against the vendor fakes: Codex CLI
headless (`codex exec`), the Vercel AI SDK's default OpenAI provider (generateText, streamText) and
the OpenAI Agents SDK running an agent with a function tool. Each run is billed like Chat
Completions; the npm clients skip when node or `make clients` is missing."""

import asyncio
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from ..conftest import IN_CI, balance_of, make_user, usage_rows

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
BIN = CLIENTS / "node_modules" / ".bin"


def _need(path: Path, what: str) -> None:
    if shutil.which("node") is None or not path.exists():
        if IN_CI:
            pytest.fail(f"{what} is needed: run make clients")
        pytest.skip(f"{what} not installed (make clients)")


def _billed_exactly(user, start: str = "5") -> None:
    rows = usage_rows(user)
    assert rows and all(r.status == "ok" and r.endpoint == "responses" for r in rows)
    assert balance_of(user) == Decimal(start) - sum(r.cost_usd for r in rows)
    assert all(r.cost_usd > 0 for r in rows)


def codex_home(tmp_path: Path, server: str) -> Path:
    """A CODEX_HOME whose config.toml is the dashboard quick start's two lines, as shown."""
    from accounts.quickstart import snippets

    home = tmp_path / "codex-home"
    home.mkdir()
    [codex] = [s for s in snippets(server) if s.id == "codex"]
    (home / "config.toml").write_text(codex.code + "\n")
    return home


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
def test_codex_exec_runs_its_shell_tool_then_answers(api_server, committed, vendors, tmp_path, model):
    _need(BIN / "codex", "Codex CLI")
    user = make_user("codex", "5")
    work = tmp_path / "work"
    work.mkdir()
    call = json.dumps({"cmd": "echo gpuniq-tool-ran > proof.txt"})
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "CODEX"))},
        "CODEX_HOME": str(codex_home(tmp_path, api_server)),
        "HOME": str(tmp_path),
        "GPUNIQ_API_KEY": user.raw_key,
    }
    done = subprocess.run(
        [
            str(BIN / "codex"),
            "exec",
            "-m",
            model,
            "-c",  # no retries: a failure shows at once
            "model_providers.gpuniq.request_max_retries=0",
            "-c",
            "model_providers.gpuniq.stream_max_retries=0",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-C",
            str(work),
            f"Write the proof file. [[call:exec_command {call}]]",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / "proof.txt").read_text().strip() == "gpuniq-tool-ran"
    assert "The tool said:" in done.stdout
    assert [r.model for r in usage_rows(user)] == [model, model]
    _billed_exactly(user)


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
def test_vercel_ai_sdk_default_provider_generates_and_streams(api_server, committed, vendors, model):
    _need(CLIENTS / "node_modules" / "@ai-sdk" / "openai", "The Vercel AI SDK")
    user = make_user("vercel", "5")
    env = {
        **os.environ,
        "GPUNIQ_BASE": f"{api_server}/v1/openai",
        "GPUNIQ_KEY": user.raw_key,
        "GPUNIQ_MODEL": model,
    }
    done = subprocess.run(
        ["node", "vercel_responses.mjs"],
        cwd=CLIENTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"]["text"] == "Echo: Hello from vercel" and seen["plain"]["finishReason"] == "stop"
    assert seen["stream"]["text"] == "Echo: stream from vercel" and seen["stream"]["finishReason"] == "stop"
    first, second = usage_rows(user)
    assert (seen["plain"]["inputTokens"], seen["plain"]["outputTokens"]) == (
        first.prompt_tokens,
        first.completion_tokens,
    )
    assert (seen["stream"]["inputTokens"], seen["stream"]["outputTokens"]) == (
        second.prompt_tokens,
        second.completion_tokens,
    )
    if model == "gpt-4o":  # OpenAI's own Responses API served both
        assert [r["path"] for r in vendors["openai"].requests] == ["/v1/responses"] * 2
    _billed_exactly(user)


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
def test_openai_agents_sdk_runs_an_agent_with_a_function_tool(api_server, committed, vendors, model):
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # traces would go to OpenAI
    user = make_user("agent", "5")
    calls = []

    @function_tool
    def get_weather(location: str) -> str:
        """The weather in a city."""
        calls.append(location)
        return f"sunny in {location}"

    async def run():
        client = AsyncOpenAI(api_key=user.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
        agent = Agent(
            name="forecaster",
            instructions="Answer with the tool's help.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model=model, openai_client=client),
        )
        try:
            return await Runner.run(agent, "What is the weather in Paris?")
        finally:
            await client.close()

    result = asyncio.run(run())
    assert calls == ["Paris"]
    assert result.final_output == "The tool said: sunny in Paris"
    assert len(usage_rows(user)) == 2
    _billed_exactly(user)
