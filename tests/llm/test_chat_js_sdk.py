"""The official OpenAI JS SDK (node) against the live gateway: plain, streamed, error."""

import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from ..conftest import IN_CI, make_user

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="session")
def js_sdk():
    if shutil.which("node") is None or shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("node and npm are needed for the JS SDK tests")
        pytest.skip("node/npm not installed")
    if not (JS_DIR / "node_modules" / "openai").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR, check=True, timeout=300
        )
    return JS_DIR


def test_js_sdk_plain_stream_and_error(js_sdk, api_server, committed, vendors):
    user = make_user("erin", "5")
    env = {**os.environ, "GPUNIQ_KEY": user.raw_key, "GPUNIQ_BASE": f"{api_server}/v1/openai"}
    done = subprocess.run(
        ["node", "chat.mjs"], cwd=js_sdk, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["plain"]["content"] == "Echo: Hello from node"
    assert seen["plain"]["model"] == "gpt-4o"
    assert seen["plain"]["usage"]["total_tokens"] == seen["plain"]["usage"]["prompt_tokens"] + 4
    assert seen["stream"]["content"] == "Echo: stream from node"
    assert Decimal(str(seen["stream"]["usage"]["cost_usd"])) > 0
    assert seen["error"] == {"status": 404, "code": "model_not_found", "type": "not_found_error"}
