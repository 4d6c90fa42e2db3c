"""Shared machinery for the fake vendor servers (loopback only, never real vendors).

* A tiny raw-ASGI framework (no Starlette): :class:`Request`, :class:`Conn`
  (response helper that watches for client disconnects) and :class:`FakeServer`
  (routing, request log, fault scripts, control endpoints, uvicorn thread).
* Deterministic "model": :func:`make_plan` turns a vendor-neutral list of
  :class:`Turn` into a :class:`Plan` (reply text / tool call / reasoning / usage).

Deterministic rules (identical for every vendor):

* ``count_tokens(text)`` = number of whitespace-separated words.
* prompt tokens = sum over messages (system prompt included) of
  ``count_tokens(text) + 3``; tool definitions are not counted.
* reply = ``"Echo: " + last_user_text[:60]``, whitespace-normalised (words joined
  by one space).  If the last message is a tool result: ``"The tool said: <result>"``.
* a tool call (first tool, args ``{"location": "Paris"}``) is produced when tools
  are given and the last message is a user message containing "weather", or when
  tool choice forces a tool; tool-call output tokens = ``count_tokens(name + " " + args_json)``.
* reasoning text = ``"Thinking about: " + last_text[:40]`` (normalised).
* ``max_tokens`` truncates the *visible* reply to that many words -> "length".
* ``[[cached]]`` anywhere in the request text -> cached = prompt_tokens // 2.
* ``[[fault:NAME]]`` in the last user message -> that request gets fault NAME.
* ``[[call:TOOL {json args}]]`` in the last user message, TOOL among the tools given -> a call
  of TOOL with those args (how agent clients such as Claude Code are made to run a tool).
* ``[[bill:max]]`` anywhere in the request body -> usage is the most the real vendor could
  legitimately bill for the request as sent (each fake documents its rule: the vendor's own
  tokenizer or a byte bound for the prompt, the output limit sent, times the candidates, thinking
  budgets, images at the vendor's largest per-image count); the visible reply stays the echo.
* ``[[bill:cache_write]]`` (Anthropic) -> the whole prompt is reported as written to the prompt
  cache, at the TTL of the request's ``cache_control`` (5 minutes unless it says ``"1h"``).
* :attr:`FakeServer.billed` lists, per request the fake answered (also a stream the client left),
  what it billed, as ``billing.pricing.TokenUsage`` fields (prompt includes cached and written).

Faults (``FAULTS``): see :meth:`FakeServer.serve_completion`.  ``refuse`` closes the
TCP connection without any response bytes (the ASGI app closes uvicorn's transport,
reached through ``send.__self__.transport``); callers who want "nothing listening"
can use :func:`closed_port_url` instead.
"""

from __future__ import annotations

import base64
import asyncio
import collections
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import uvicorn

ERROR_FAULTS = frozenset({"400", "401", "404", "429", "500", "503", "529", "context"})
STREAM_FAULTS = frozenset({"stall", "stall_early", "cutoff", "malformed", "midstream_error"})
FAULTS = ERROR_FAULTS | STREAM_FAULTS | {"slow_first_byte", "no_usage", "refuse"}
CACHED_MARKER = "[[cached]]"
BILL_MAX_MARKER = "[[bill:max]]"
CACHE_WRITE_MARKER = "[[bill:cache_write]]"
TOOL_ARGS = {"location": "Paris"}
_INBAND = re.compile(r"\[\[fault:([A-Za-z0-9_]+)\]\]")
_CALL = re.compile(r"\[\[call:([A-Za-z0-9_-]+) (\{.*?\})\]\]")


def count_tokens(text: Any) -> int:
    """Fake tokenizer: one token per whitespace-separated word."""
    return len(str(text or "").split())


def bills_max(req: "Request") -> bool:
    return BILL_MAX_MARKER in req.body.decode("utf-8", "replace")


def utf8_len(text: str) -> int:
    """A byte bound of a prompt: every BPE token covers at least one UTF-8 byte."""
    return len(text.encode("utf-8"))


def pdf_pages(data: str) -> int:
    """The pages of a base64 PDF (its page objects; at least one), which the vendors bill by."""
    try:
        raw = base64.b64decode(data, validate=False)
    except ValueError:
        return 1
    return max(len(re.findall(rb"/Type\s*/Page(?!s)", raw)), 1)


def inband_fault(text: str) -> str | None:
    m = _INBAND.search(text or "")
    return m.group(1) if m else None


def fake_signature(text: str) -> str:
    """Deterministic opaque signature (Anthropic thinking / Gemini thoughtSignature)."""
    return "Sig" + hashlib.sha256(text.encode()).hexdigest()[:40]


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@dataclass
class Turn:
    role: str  # "system" | "user" | "assistant" | "tool"
    text: str


@dataclass
class Plan:
    model: str
    text: str = ""
    tool_name: str | None = None
    tool_args: dict | None = None
    reasoning: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0  # visible output (text or tool call), excludes reasoning
    reasoning_tokens: int = 0
    truncated: bool = False
    cache_write_tokens: int = 0  # prompt tokens written to the cache, 5-minute TTL
    cache_write_1h_tokens: int = 0  # ... 1-hour TTL
    candidates: int = 1  # choices rendered (OpenAI n); usage counts are totals over them
    options: dict = field(default_factory=dict)  # vendor-specific rendering flags

    is_tool = property(lambda self: self.tool_name is not None)
    tool_args_json = property(lambda self: json.dumps(self.tool_args))
    text_chunks = lambda self: split_words(self.text)  # noqa: E731
    reasoning_chunks = lambda self: split_words(self.reasoning or "")  # noqa: E731

    def bill_max(self, *, prompt: int, output: int, reasoning: int = 0) -> None:
        """Report the most the vendor could bill: `prompt` tokens uncached, `output` visible and
        `reasoning` thinking tokens (totals over all candidates)."""
        self.prompt_tokens, self.cached_tokens = prompt, 0
        self.output_tokens, self.reasoning_tokens = output, reasoning

    def billed(self) -> dict:
        """What the vendor bills for this plan, as billing.pricing.TokenUsage fields."""
        return {
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "completion_tokens": self.output_tokens + self.reasoning_tokens,
        }


def split_words(text: str) -> list[str]:
    """One streaming chunk per word; concatenation gives back ``text``."""
    words = text.split()
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def split_json(s: str, size: int = 8) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)]


def make_plan(
    *,
    model: str,
    turns: list[Turn],
    tool_names: list[str] = (),
    forced_tool: str | None = None,
    tools_allowed: bool = True,
    reasoning: bool = False,
    max_tokens: int | None = None,
) -> Plan:
    # the last turn that is not an instruction (Claude Code puts system messages after the prompt)
    last = next((t for t in reversed(turns) if t.role != "system"), turns[-1] if turns else Turn("user", ""))
    last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
    plan = Plan(model=model)
    plan.prompt_tokens = sum(count_tokens(t.text) + 3 for t in turns)
    if any(CACHED_MARKER in t.text for t in turns):
        plan.cached_tokens = plan.prompt_tokens // 2
    if reasoning:
        plan.reasoning = " ".join(
            ("Thinking about: " + (last.text if last.role != "system" else last_user)[:40]).split()
        )
        plan.reasoning_tokens = count_tokens(plan.reasoning)
    call = _CALL.search(last.text) if last.role == "user" and tool_names else None
    if call and call.group(1) in tool_names and tools_allowed:
        plan.tool_name, plan.tool_args = call.group(1), json.loads(call.group(2))
        plan.output_tokens = count_tokens(plan.tool_name + " " + plan.tool_args_json)
        return plan
    if (
        tool_names
        and tools_allowed
        and (forced_tool or (last.role == "user" and "weather" in last.text.lower()))
    ):
        plan.tool_name = forced_tool or tool_names[0]
        plan.tool_args = dict(TOOL_ARGS)
        plan.output_tokens = count_tokens(plan.tool_name + " " + plan.tool_args_json)
        return plan
    text = "The tool said: " + last.text if last.role == "tool" else "Echo: " + last_user[:60]
    words = text.split()
    if max_tokens is not None and len(words) > max(0, int(max_tokens)):
        words, plan.truncated = words[: max(0, int(max_tokens))], True
    plan.text = " ".join(words)
    plan.output_tokens = len(words)
    return plan


# --------------------------------------------------------------------------- ASGI bits
@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    json: Any


class Conn:
    """Response helper for one request; notices client disconnects via ``receive``."""

    def __init__(self, server: "FakeServer", receive, send):
        self.server, self.receive, self.send = server, receive, send
        self.disconnected = asyncio.Event()
        self.done = self.aborted = False  # done: response completed, or aborted on purpose
        self._watcher: asyncio.Task | None = None

    def watch(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers]
        await self.send({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self, data: bytes = b"") -> None:
        self.done = True
        await self.send({"type": "http.response.body", "body": data, "more_body": False})

    async def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        await self.start(
            status, [("content-type", content_type), ("content-length", str(len(body)))] + list(headers or [])
        )
        await self.finish(body)

    async def send_json(
        self,
        status: int,
        obj: Any,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> None:
        await self.send_bytes(status, json.dumps(obj).encode(), content_type, headers)

    async def sleep(self, seconds: float) -> bool:
        """Sleep; return True early if the client went away or the server is stopping."""
        deadline = time.monotonic() + seconds
        while True:
            if self.disconnected.is_set() or self.server._closing.is_set():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.disconnected.wait(), min(remaining, 0.1))
            except asyncio.TimeoutError:
                pass

    def abort(self) -> None:
        """Close the TCP connection abruptly (no response / no stream terminator)."""
        self.done = self.aborted = True
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if transport is None:  # not running under uvicorn: let the server close it
            raise ConnectionAbortedError("fake server abort")
        transport.close()


Handler = Callable[[Request, Conn], Awaitable[None]]


class FakeServer:
    """Base fake vendor: an ASGI app that also knows how to run itself with uvicorn.

    Args: ``api_key`` (expected key), ``chunk_delay`` (seconds between stream frames),
    ``slow_seconds`` (delay for ``slow_first_byte``), ``stall_seconds`` (how long a
    ``stall`` holds before dropping the connection), ``models`` (if given, unknown
    models get the vendor's 404), ``host``/``port`` (port 0 = pick a free one).
    ``requests`` logs vendor requests only (not ``/_control/*``); ``disconnects`` counts
    responses whose client left before the end (cutoff/refuse aborts don't count).
    """

    json_content_type = "application/json"
    sse_content_type = "text/event-stream"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        chunk_delay: float = 0.0,
        slow_seconds: float = 3.0,
        stall_seconds: float = 60.0,
        models: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.api_key, self.chunk_delay = api_key, chunk_delay
        self.slow_seconds, self.stall_seconds = slow_seconds, stall_seconds
        self.models = list(models) if models else None
        self.host, self.port = host, port
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._lock, self._closing = threading.Lock(), threading.Event()
        self._scripts: collections.deque = collections.deque()
        self._requests: list[dict] = []
        self._billed: list[dict] = []
        self._disconnects, self._ids = 0, itertools.count(1)
        self._thread: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._sock: socket.socket | None = None

    # ------------------------------------------------------------------ public API
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    @property
    def billed(self) -> list[dict]:
        """Per answered completion, what the vendor billed (see :meth:`Plan.billed`)."""
        with self._lock:
            return list(self._billed)

    @property
    def disconnects(self) -> int:
        with self._lock:
            return self._disconnects

    def script(self, fault: str, times: int = 1) -> None:
        """The next ``times`` completion requests get ``fault`` (thread-safe)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        with self._lock:
            self._scripts.append([fault, int(times)])

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._billed.clear()
            self._disconnects = 0

    def wait_for_disconnects(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Poll until ``disconnects >= n`` (disconnect detection is asynchronous)."""
        deadline = time.monotonic() + timeout
        while self.disconnects < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.disconnects >= n

    def start(self) -> "FakeServer":
        if self._thread:
            return self
        self._closing.clear()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self._sock, self.port = sock, sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            ws="none",
            loop="asyncio",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [sock]},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if not self._thread:
            return
        self._closing.set()
        self._uvicorn.should_exit = True
        self._thread.join(5)
        if self._thread.is_alive():
            self._uvicorn.force_exit = True
            self._thread.join(5)
        self._sock.close()
        self._thread = self._uvicorn = self._sock = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for vendors
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern + r"\Z"), handler))

    def next_id(self, prefix: str, width: int = 24) -> str:
        return f"{prefix}{next(self._ids):0{width}d}"

    def take_fault(self, last_user_text: str) -> str | None:
        fault = inband_fault(last_user_text)
        if fault:
            return fault
        with self._lock:
            if not self._scripts:
                return None
            entry = self._scripts[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._scripts.popleft()
            return entry[0]

    # Vendor hooks (subclasses implement): error_response(fault, model) -> (status, body,
    # headers); render_json(plan, no_usage) -> dict; render_stream(plan, no_usage, req) ->
    # list of SSE frames; malformed_frame() / midstream_error_frame() -> bytes.
    def response_headers(self) -> list[tuple[str, str]]:
        return []

    async def serve_completion(
        self, conn: Conn, req: Request, plan: Plan, fault: str | None, stream: bool
    ) -> None:
        """Send the completion, applying ``fault``:

        400/401/404/429/500/503/529/context -> vendor error body (429 adds ``retry-after: 1``);
        slow_first_byte -> wait ``slow_seconds`` first; refuse -> close, no bytes;
        no_usage -> omit usage; malformed -> truncated JSON body / one bad SSE frame
        (stream then continues normally); cutoff -> a few frames then abrupt close;
        stall -> a few frames then silence until client leaves / ``stall_seconds``;
        stall_early -> the same after the first frame only (a client leaving right after it
        has received no text: OpenAI's role chunk, Anthropic's message_start);
        midstream_error -> a few frames then the vendor's in-stream error, then end.
        Non-stream cutoff/stall send headers + partial JSON body.
        """
        if fault == "refuse" or (fault == "slow_first_byte" and await conn.sleep(self.slow_seconds)):
            return  # an unfinished response is aborted by __call__ (refuse: no bytes at all)
        if fault in ERROR_FAULTS:
            status, body, headers = self.error_response(fault, plan.model)
            await conn.send_json(status, body, headers, self.json_content_type)
            return
        with self._lock:  # the vendor bills once it starts answering, whether or not the client stays
            self._billed.append(plan.billed())
        no_usage = fault == "no_usage"
        if not stream:
            if fault == "malformed":
                await conn.send_bytes(200, b'{"id": "broken", "choices": [{"mess', self.json_content_type)
            elif fault in ("cutoff", "stall"):
                await conn.start(200, [("content-type", self.json_content_type)] + self.response_headers())
                await conn.write(b'{"id": "partial", ')
                if fault == "stall":
                    await conn.sleep(self.stall_seconds)
            else:
                await conn.send_json(
                    200, self.render_json(plan, no_usage), self.response_headers(), self.json_content_type
                )
            return
        frames = self.render_stream(plan, no_usage, req)
        cut = min(4, len(frames) - 1) if fault in ("cutoff", "stall", "midstream_error") else len(frames)
        if fault == "stall_early":
            fault, cut = "stall", 1
        await conn.start(
            200,
            [
                ("content-type", self.sse_content_type),
                ("cache-control", "no-cache"),
                ("connection", "keep-alive"),
            ]
            + self.response_headers(),
        )
        for i, frame in enumerate(frames[:cut]):
            if i and await conn.sleep(self.chunk_delay):
                return
            if fault == "malformed" and i == 2:
                await conn.write(self.malformed_frame())
            await conn.write(frame)
            await asyncio.sleep(0)
            if conn.disconnected.is_set():
                return
        if fault == "midstream_error":
            await conn.write(self.midstream_error_frame())
        elif fault == "stall":
            await conn.sleep(self.stall_seconds)
            return
        elif fault == "cutoff":
            return
        await conn.finish()

    # ------------------------------------------------------------------ ASGI entry
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parsed = _loads(body)
        req = Request(
            scope["method"],
            scope["path"],
            dict(parse_qsl(scope["query_string"].decode())),
            headers,
            body,
            parsed,
        )
        conn = Conn(self, receive, send)
        if req.path.startswith("/_control/"):
            await self._control(req, conn)
            return
        with self._lock:
            self._requests.append(
                {
                    "method": req.method,
                    "path": req.path,
                    "query": req.query,
                    "headers": headers,
                    "json": parsed,
                    "body": body.decode("utf-8", "replace"),
                    "time": time.time(),
                }
            )
        for method, pattern, handler in self._routes:  # noqa: B007 — the matching handler is used below
            if method == req.method and pattern.match(req.path):
                break
        else:
            await conn.send_json(404, {"error": {"message": f"no route {req.method} {req.path}"}})
            return
        conn.watch()
        try:
            try:
                await handler(req, conn)
            finally:
                if not conn.done and conn.disconnected.is_set():  # client went away mid-response
                    conn.done = True
                    with self._lock:
                        self._disconnects += 1
            if not conn.done:  # handler stopped early on purpose (cutoff/stall/refuse/stopping)
                conn.abort()
            if conn.aborted:  # let uvicorn see the closed transport before we return
                try:
                    await asyncio.wait_for(conn.disconnected.wait(), 1)
                except asyncio.TimeoutError:
                    pass
        finally:
            conn._watcher.cancel()

    async def _control(self, req: Request, conn: Conn) -> None:
        """POST /_control/script {"fault","times"}; GET /_control/requests; POST /_control/reset."""
        status, out = 200, {"ok": True}
        if (req.method, req.path) == ("POST", "/_control/script"):
            try:
                self.script((req.json or {}).get("fault"), int((req.json or {}).get("times", 1)))
            except (ValueError, TypeError) as exc:
                status, out = 400, {"error": str(exc)}
        elif (req.method, req.path) == ("GET", "/_control/requests"):
            out = {"requests": self.requests, "disconnects": self.disconnects}
        elif (req.method, req.path) == ("POST", "/_control/reset"):
            self.reset()
        else:
            status, out = 404, {"error": "unknown control endpoint"}
        await conn.send_json(status, out)


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def sse(data: Any, event: str | None = None, compact: bool = True, crlf: bool = False) -> bytes:
    """Encode one SSE frame (``event:`` line optional)."""
    text = (
        data
        if isinstance(data, str)
        else json.dumps(data, separators=(",", ":") if compact else (", ", ": "))
    )
    nl = "\r\n" if crlf else "\n"
    head = f"event: {event}{nl}" if event else ""
    return f"{head}data: {text}{nl}{nl}".encode()
