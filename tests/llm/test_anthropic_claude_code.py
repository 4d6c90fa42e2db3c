"""Claude Code headless (`claude -p`, npm @anthropic-ai/claude-code) through the Anthropic front door:
a multi-turn run in which the (fake) model asks for a Bash call, Claude Code runs it, and the model
answers from its output; once to a Claude model (forwarded to Anthropic as sent) and once to an
OpenAI-family model (translated). Claude Code talks only to the gateway: any other host would
have to go through the recording proxy it is given, and the test asserts nobody did.
Skips when node or the CLI (installed by `make clients`) is missing, except in CI, where it fails."""

import json
import shutil
import socket
import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from ..conftest import IN_CI, balance_of, make_user, usage_rows

CLAUDE_BIN = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "claude"
pytestmark = pytest.mark.e2e


def _need_claude_code() -> None:
    """Skip on a machine without node or `make clients`; fail in CI, where it must run."""
    if shutil.which("node") and CLAUDE_BIN.exists():
        return
    if IN_CI:
        pytest.fail("Claude Code is needed: run make clients")
    pytest.skip("Claude Code not installed (make clients)")


class RecordingProxy:
    """A listener posing as HTTP(S)_PROXY: records every connection attempt and closes it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.attempts: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.attempts.append(conn.recv(200))
                except OSError:
                    self.attempts.append(b"")

    def close(self):
        self.sock.close()


@pytest.fixture
def cody(committed):
    # Cody: $5, codes with Claude Code.
    return make_user("cody", "5")


def quick_start_env(api_server: str, key: str) -> dict[str, str]:
    """The variables the dashboard quick start's Claude Code line exports, as shown."""
    from accounts.quickstart import snippets

    [claude] = [s for s in snippets(api_server) if s.id == "claude-code"]
    export = claude.code.splitlines()[0].replace("$GPUNIQ_API_KEY", key)
    assert export.startswith("export ")
    return dict(pair.split("=", 1) for pair in export.split()[1:])


def run_claude(api_server: str, key: str, model: str, prompt: str, home: Path, proxy: RecordingProxy):
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(home),
        **quick_start_env(api_server, key),
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HTTP_PROXY": proxy.url,
        "HTTPS_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "https_proxy": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    work = home / "work"
    work.mkdir(exist_ok=True)
    done = subprocess.run(
        [
            str(CLAUDE_BIN),
            "-p",
            prompt,
            "--output-format",
            "json",
            "--model",
            model,
            "--allowedTools",
            "Bash",
            "--max-turns",
            "4",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (done.stdout.decode()[-3000:], done.stderr.decode()[-3000:])
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("slug,vendor", [("claude-haiku-4-5", "anthropic"), ("gpt-4o", "openai")])
def test_claude_code_runs_a_tool_through_the_gateway(api_server, cody, vendors, tmp_path, slug, vendor):
    _need_claude_code()
    proxy = RecordingProxy()
    try:
        # the fake model asks for this call; its output (hi-42) appears nowhere in the request
        prompt = (
            'Say hi using the shell [[call:Bash {"command": "echo hi-$((40+2))", "description": "Say hi"}]]'
        )
        result = run_claude(api_server, cody.raw_key, slug, prompt, tmp_path, proxy)
    finally:
        proxy.close()
    assert proxy.attempts == [], "Claude Code tried to reach a host other than the gateway"
    assert result["is_error"] is False, result
    assert result["num_turns"] >= 2
    with_tools = [r for r in vendors[vendor].requests if (r["json"] or {}).get("tools")]
    assert len(with_tools) >= 2, "a tool call and the answer after it"
    assert "hi-42" in json.dumps(with_tools[-1]["json"]["messages"]), (
        "Claude Code ran Bash and sent its output"
    )
    assert "The tool said: hi-42" in result["result"]
    if vendor == "anthropic":  # forwarded as Claude Code sent it: its betas and beta surface
        assert with_tools[-1]["query"] == {"beta": "true"}
        assert "claude-code" in with_tools[-1]["headers"]["anthropic-beta"]
    rows = [r for r in usage_rows(cody) if r.endpoint == "anthropic_messages"]
    assert len(rows) >= 2 and all(r.status == "ok" for r in rows)
    assert Decimal("5") - balance_of(cody) == sum(r.cost_usd for r in rows) > 0
