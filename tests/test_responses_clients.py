"""Real Responses API clients through the gateway on a socket, against the vendor fakes: Codex CLI
headless (`codex exec`), the Vercel AI SDK's default OpenAI provider (generateText, streamText) and
the OpenAI Agents SDK running an agent with a function tool. Each run is billed like Chat
Completions; the npm clients skip when node or `make clients` is missing."""

import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from .conftest import IN_CI, balance_of, make_user, usage_rows

CLIENTS = Path(__file__).parent / "clients"
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


def codex_home(tmp_path: Path, server: str, model: str) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f'''model = "{model}"
model_provider = "gpuniq"

[model_providers.gpuniq]
name = "GPUniq"
base_url = "{server}/v1/openai"
env_key = "GPUNIQ_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
''')
    return home


@pytest.mark.parametrize("model", ["gpt-4o", "claude-haiku-4-5"])
def test_codex_exec_runs_its_shell_tool_then_answers(api_server, committed, vendors, tmp_path, model):
    _need(BIN / "codex", "Codex CLI")
    user = make_user("codex", "5")
    work = tmp_path / "work"
    work.mkdir()
    call = json.dumps({"cmd": "echo gpuniq-tool-ran > proof.txt"})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "CODEX"))},
           "CODEX_HOME": str(codex_home(tmp_path, api_server, model)), "HOME": str(tmp_path),
           "GPUNIQ_API_KEY": user.raw_key}
    done = subprocess.run([str(BIN / "codex"), "exec", "--skip-git-repo-check",
                           "--dangerously-bypass-approvals-and-sandbox", "-C", str(work),
                           f"Write the proof file. [[call:exec_command {call}]]"],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / "proof.txt").read_text().strip() == "gpuniq-tool-ran"
    assert "The tool said:" in done.stdout
    assert len(usage_rows(user)) == 2
    _billed_exactly(user)
