"""The Python SDK (sdk/gpuniq) against the live server: the docs' native snippets run as written
(with the local base URL), chat sessions, typed errors; retries and media-job polling against
scripted HTTP answers (httpx.MockTransport), since those need exact status sequences."""

import contextlib
import io
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from llm.models import ChatMessage

from ..conftest import balance_of, make_user, usage_rows
from tests.llm.test_native_terminal import structured_claude  # noqa: F401  (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

import gpuniq  # noqa: E402
from gpuniq import GPUniq  # noqa: E402

# The "Native GPUniq SDK" section of the API docs, verbatim.
DOC_SNIPPETS = {
    "simple_chat": """
response = client.llm.chat("claude-haiku-4-5", "Explain how transformers work")
print(response)
""",
    "chat_completion": """
data = client.llm.chat_completion(
    messages=[
        {"role": "system", "content": "You are a helpful AI assistant."},
        {"role": "user", "content": "What is gradient descent?"},
    ],
    model="claude-sonnet-4-6",
    temperature=0.7,
    max_tokens=1000,
    top_p=0.9,
)
print(data["content"])
print(f"Tokens used: {data['tokens_used']} cost: ${data['cost_usd']:.6f}")
""",
    "models": """
models = client.llm.models()
for model in models["models"]:
    print(model)
""",
    "balance": """
balance = client.llm.balance()
print(f"Available: ${balance['balance_usd']:.4f} USD")
""",
    "usage_history": """
history = client.llm.usage_history(limit=50, offset=0)
for log in history["logs"]:
    print(f"{log['model']}: {log['total_tokens']} tokens — ${log['cost_usd']:.6f}")
""",
    "chat_sessions": """
# Create a session
session = client.llm.create_chat_session(
    model="claude-sonnet-4-6",
    title="Research Assistant",
)

# Send messages within the session
reply = client.llm.send_message(
    chat_id=session["id"],
    message="What are the key papers on attention mechanisms?",
    temperature=0.5,
)

# List all sessions
sessions = client.llm.list_chat_sessions(limit=50)

# Get a session with full message history
full = client.llm.get_chat_session(chat_id=session["id"])

# Update title
client.llm.update_chat_session(chat_id=session["id"], title="New Title")

# Delete
client.llm.delete_chat_session(chat_id=session["id"])
""",
    "terminal": """
cmds = client.llm.generate_commands(
    prompt="find all Python files larger than 1MB and sort by size",
    max_commands=5,
)
for c in cmds["commands"]:
    print(f"[{c['danger']}] {c['command']} # {c['description']}")
""",
}


@pytest.fixture
def client(api_server, alice):
    with GPUniq(api_key=alice.raw_key, base_url=api_server) as sdk:
        yield sdk


def run_snippet(name: str, client) -> tuple[dict, str]:
    scope, out = {"client": client}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(textwrap.dedent(DOC_SNIPPETS[name]), scope)
    return scope, out.getvalue()


def test_the_docs_snippets_run_as_written(client, alice, vendors, structured_claude):  # noqa: F811
    _, out = run_snippet("simple_chat", client)
    assert out == "Echo: Explain how transformers work\n"
    scope, out = run_snippet("chat_completion", client)
    assert out.startswith("Echo: What is gradient descent?\nTokens used: ")
    assert scope["data"]["tokens_used"] == scope["data"]["prompt_tokens"] + scope["data"]["completion_tokens"]
    _, out = run_snippet("models", client)
    assert "'id': 'claude-haiku-4-5'" in out
    _, out = run_snippet("balance", client)
    assert out == f"Available: ${balance_of(alice):.4f} USD\n"
    _, out = run_snippet("usage_history", client)
    assert out.splitlines()[0].startswith("claude-sonnet-4-6: ") and len(out.splitlines()) == 2

    scope, _ = run_snippet("chat_sessions", client)
    assert scope["reply"]["content"] == "Echo: What are the key papers on attention mechanisms?"
    assert scope["session"]["id"] in [s["id"] for s in scope["sessions"]["chats"]]
    assert [m["role"] for m in scope["full"]["messages"]] == ["user", "assistant"]
    assert vendors["anthropic"].requests[-1]["json"]["temperature"] == 0.5
    assert not ChatMessage.objects.filter(chat_id=scope["session"]["id"]).exists()  # deleted at the end

    _, out = run_snippet("terminal", client)
    assert out == (
        "[safe] find all Python files larger than 1MB and sort by size "
        "# find all Python files larger than 1MB and sort by size\n"
    )
    assert [u.endpoint for u in usage_rows(alice)] == [
        "native_chat",
        "native_chat",
        "chat_session",
        "terminal",
    ]


def test_chat_session_methods(client, alice, vendors):
    session = client.llm.create_chat_session(model="gpt-4o", title="Plan", system_prompt="Be terse.")
    first = client.llm.send_message(session["id"], "step one")
    second = client.llm.send_message(session["id"], "step two", model="gpt-4.1", max_tokens=50)
    assert (first["content"], second["content"], second["model"]) == (
        "Echo: step one",
        "Echo: step two",
        "gpt-4.1",
    )
    assert vendors["openai"].requests[-1]["json"]["messages"][0] == {"role": "system", "content": "Be terse."}
    updated = client.llm.update_chat_session(session["id"], title="Renamed", model="gpt-4.1")
    assert (updated["title"], updated["model"]) == ("Renamed", "gpt-4.1")
    full = client.llm.get_chat_session(session["id"])
    assert [m["content"] for m in full["messages"]] == [
        "step one",
        "Echo: step one",
        "step two",
        "Echo: step two",
    ]
    assert client.llm.list_chat_sessions()["total"] == 1
    assert client.llm.delete_chat_session(session["id"]) == {"id": session["id"], "deleted": True}
    with pytest.raises(gpuniq.NotFoundError) as caught:
        client.llm.get_chat_session(session["id"])
    assert (caught.value.code, caught.value.status_code) == ("chat_not_found", 404)
    assert caught.value.request_id.startswith("req_")
    breakdown = client.llm.usage_breakdown(period="week", group_by="model", tz="Europe/Berlin")
    assert breakdown["totals"]["requests"] == 2 and {b["model"] for b in breakdown["buckets"]} == {
        "gpt-4o",
        "gpt-4.1",
    }


def test_typed_errors_carry_code_status_and_request_id(api_server, alice, committed, vendors):
    with pytest.raises(gpuniq.AuthenticationError) as caught:
        GPUniq(api_key="gpuniq_not_a_real_key", base_url=api_server).llm.balance()
    assert (caught.value.code, caught.value.status_code) == ("invalid_api_key", 401)
    assert caught.value.request_id.startswith("req_")

    client = GPUniq(api_key=alice.raw_key, base_url=api_server)
    with pytest.raises(gpuniq.InvalidRequestError) as caught:
        client.llm.generate_commands("list files", max_commands=50)
    assert (caught.value.code, caught.value.status_code) == ("invalid_parameter", 400)
    with pytest.raises(gpuniq.NotFoundError) as caught:
        client.llm.chat("no-such-model", "hi")
    assert caught.value.code == "model_not_found"

    broke = make_user("broke", "0")
    with pytest.raises(gpuniq.InsufficientBalanceError) as caught:
        GPUniq(api_key=broke.raw_key, base_url=api_server).llm.chat("gpt-4o", "hi")
    assert (caught.value.code, caught.value.status_code) == ("insufficient_balance", 402)

    limited = make_user("limited", "1", rpm=1)
    slow = GPUniq(api_key=limited.raw_key, base_url=api_server, max_retries=0)
    slow.llm.balance()
    with pytest.raises(gpuniq.RateLimitError) as caught:
        slow.llm.balance()
    assert (caught.value.code, caught.value.status_code) == ("rate_limit_per_key", 429)
    assert 0 < caught.value.retry_after <= 60
    assert isinstance(caught.value, gpuniq.GPUniqError) and "rate_limit_per_key" in str(caught.value)
    assert balance_of(broke) == Decimal(0)


def test_base_url_defaults_and_api_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("GPUNIQ_API_KEY", "gpuniq_env")
    monkeypatch.delenv("GPUNIQ_BASE_URL", raising=False)
    assert GPUniq().base_url == "https://api.gpuniq.com" == gpuniq.DEFAULT_BASE_URL
    assert GPUniq(base_url="http://x.test/v1/llm/").base_url == "http://x.test"
    monkeypatch.delenv("GPUNIQ_API_KEY")
    with pytest.raises(gpuniq.AuthenticationError):
        GPUniq()


# --- scripted answers -------------------------------------------------------------------------


def scripted(answers: list, seen: list):
    """An SDK client whose HTTP answers come from `answers` (status, json, headers) in order."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = httpx.Response(200, content=request.content).json() if request.content else None
        seen.append((request.method, request.url.path, request.headers.get("x-api-key"), body))
        status, body, headers = answers.pop(0)
        return httpx.Response(status, json=body, headers=headers)

    sleeps: list = []
    client = GPUniq(
        api_key="gpuniq_k",
        base_url="http://api.test",
        max_retries=2,
        sleep=sleeps.append,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    return client, sleeps


def ok(data) -> tuple:
    return 200, {"success": True, "data": data, "request_id": "req_1"}, {}


def fail(status: int, code: str, headers=None) -> tuple:
    return (
        status,
        {
            "success": False,
            "error": {"message": code, "type": "x", "code": code},
            "status_code": status,
            "request_id": "req_err",
        },
        headers or {},
    )


def test_429_and_transient_5xx_are_retried_honouring_retry_after():
    seen: list = []
    client, sleeps = scripted(
        [
            fail(429, "rate_limit_per_key", {"Retry-After": "2"}),
            fail(503, "all_routes_failed"),
            ok({"balance_usd": 1.0}),
        ],
        seen,
    )
    assert client.llm.balance() == {"balance_usd": 1.0}
    assert sleeps[0] == 2.0 and 0 < sleeps[1] <= 1.0 and len(seen) == 3
    assert seen[0] == ("GET", "/v1/llm/balance", "gpuniq_k", None)

    client, sleeps = scripted([fail(502, "upstream_error")] * 3, seen)
    with pytest.raises(gpuniq.APIError) as caught:
        client.llm.chat("gpt-4o", "hi")
    assert (caught.value.code, caught.value.status_code, caught.value.request_id) == (
        "upstream_error",
        502,
        "req_err",
    )
    assert len(sleeps) == 2  # max_retries

    client, sleeps = scripted([fail(400, "invalid_parameter"), fail(500, "internal_error")], seen)
    with pytest.raises(gpuniq.InvalidRequestError):
        client.llm.balance()
    with pytest.raises(gpuniq.APIError):
        client.llm.balance()
    assert sleeps == []  # neither a client error nor a 500 is retried

    client, sleeps = scripted([fail(429, "rate_limit_per_key", {"Retry-After": "3600"})], seen)
    with pytest.raises(gpuniq.RateLimitError) as caught:
        client.llm.balance()
    assert caught.value.retry_after == 3600 and sleeps == []  # longer than we are willing to wait


def job(status: str, **extra) -> dict:
    return {"job_id": "img_1", "status": status, "model": "nano-banana-pro", **extra}


def test_generate_image_polls_until_the_job_is_terminal():
    seen: list = []
    done = job("completed", image={"b64_json": "aGk="}, cost_usd=0.1072, balance_usd=9.8)
    client, _ = scripted([ok(job("pending")), ok(job("running")), ok(job("running")), ok(done)], seen)
    result = client.llm.generate_image("nano-banana-pro", "a cozy cabin at sunrise", poll_interval=0.01)
    assert result == done
    polls = [("GET", "/v1/llm/images/jobs/img_1")] * 3
    assert [(m, p) for m, p, *_ in seen] == [("POST", "/v1/llm/images/jobs")] + polls
    assert seen[0][3] == {"model": "nano-banana-pro", "prompt": "a cozy cabin at sunrise", "n": 1}

    client, _ = scripted([ok(job("pending"))], seen)
    assert client.llm.generate_image("nano-banana", "x", wait=False)["status"] == "pending"

    failed = job("failed", error={"code": "no_output_delivered", "message": "no image"})
    client, _ = scripted([ok(job("pending")), ok(failed)], seen)
    with pytest.raises(gpuniq.JobFailedError) as caught:
        client.llm.generate_image("nano-banana", "x", poll_interval=0.01)
    assert caught.value.code == "no_output_delivered" and caught.value.job == failed

    client, _ = scripted([ok(job("pending"))] + [ok(job("running"))] * 50, seen)
    with pytest.raises(gpuniq.JobTimeoutError) as caught:
        client.llm.generate_image("nano-banana", "x", poll_interval=0.01, timeout=0.05)
    assert caught.value.job["status"] in ("pending", "running")


def test_generate_video_uses_the_documented_shapes():
    seen: list = []
    kickoff = {"job_id": "vid_1", "status": "pending", "model": "kling-2-6", "estimated_cost_usd": 0.315}
    done = {
        **kickoff,
        "status": "completed",
        "video": {"url": "https://cdn.example.com/out.mp4"},
        "cost_usd": 0.315,
    }
    client, _ = scripted([ok(kickoff), ok(done)], seen)
    result = client.llm.generate_video(
        "kling-2-6", "a cat", duration=5, audio=False, resolution="1080p", poll_interval=0.01
    )
    assert result["video"]["url"].endswith(".mp4")
    assert [(m, p) for m, p, *_ in seen] == [
        ("POST", "/v1/llm/videos/jobs"),
        ("GET", "/v1/llm/videos/jobs/vid_1"),
    ]
    assert seen[0][3] == {
        "model": "kling-2-6",
        "prompt": "a cat",
        "duration": 5,
        "audio": False,
        "resolution": "1080p",
    }


def test_media_helpers_against_the_live_server(client, alice, celery_worker_proc, vendors):
    image = client.llm.generate_image(
        "nano-banana-pro", "a cozy cabin at sunrise", poll_interval=0.2, timeout=60
    )
    assert image["status"] == "completed" and image["image"]["b64_json"] and image["cost_usd"] > 0
    assert client.llm.get_image_job(image["job_id"])["status"] == "completed"
    video = client.llm.generate_video(
        "kling-2-6",
        "A small black cat slowly turns toward the camera",
        duration=5,
        audio=False,
        resolution="1080p",
        poll_interval=0.2,
        timeout=60,
    )
    assert video["status"] == "completed" and "/v1/llm/media/" in video["video"]["url"]
    assert balance_of(alice) == Decimal("10") - Decimal(str(image["cost_usd"])) - Decimal(
        str(video["cost_usd"])
    )
    with pytest.raises(gpuniq.NotFoundError):
        client.llm.get_video_job("vid_does_not_exist")
