"""A lean asyncio load client for SSE streams (raw sockets, uvloop, one await per network read:
the client shares the machine with what it measures, so it must cost little).

Each of `concurrency` workers keeps one keep-alive connection and opens streams back to back
until the deadline. A stream counts as completed when `data: [DONE]` arrives (or the `done` marker
given: `event: message_stop` for Anthropic Messages, `event: response.completed` for Responses).

All workers open their first stream at the same moment: a burst. With `warmup` seconds, what is
measured is the steady state after it, over a window from the end of the warm-up to the deadline:
`streams_per_s` is the streams completed per second of the window, each completed stream counted
for the share of its time that fell inside the window (a count of whole streams ending inside it
would jump by a whole wave of streams as the window's edges move), and the times are those of the
streams opened inside it. The burst is reported on its own (`burst_ttfb_*`: the first
stream of every worker, all opened at once), so neither hides the other. Errors and dropped
streams are counted over the whole run, the burst included.

`streams_per_s_drained` is the older measure, kept for comparison: the streams opened in the
window over the time until the last of them ended. Workers open no stream after the deadline, so
that time includes a drain in which fewer and fewer streams are open, and how much of it there is
depends on how the stream length divides the window: with 1-second streams in a 10-second window,
a target whose streams take 1.1 s is counted up to a tenth below its steady rate.
"""

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

DONE = b"data: [DONE]"


@dataclass
class StreamStats:
    completed: int = 0
    errors: int = 0
    dropped: int = 0
    ttfb_ms: list = field(default_factory=list)
    total_ms: list = field(default_factory=list)
    burst_ttfb_ms: list = field(default_factory=list)  # each worker's first stream
    elapsed: float = 0.0
    counting: bool = True  # False during the warm-up: its streams are not timed
    window: tuple = (0.0, 0.0)  # (start, end) on time.perf_counter()
    in_window: float = 0.0  # completed streams, each for the share of its time inside the window

    def summary(self) -> dict:
        def pct(values, p):
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)

        return {
            "completed": self.completed,
            "errors": self.errors,
            "dropped": self.dropped,
            "streams_per_s": round(self.in_window / (self.window[1] - self.window[0]), 1),
            "streams_per_s_drained": round(self.completed / self.elapsed, 1) if self.elapsed else 0,
            "ttfb_p50_ms": pct(self.ttfb_ms, 50),
            "ttfb_p99_ms": pct(self.ttfb_ms, 99),
            "total_p50_ms": pct(self.total_ms, 50),
            "total_p99_ms": pct(self.total_ms, 99),
            "ttfb_mean_ms": round(statistics.fmean(self.ttfb_ms), 2) if self.ttfb_ms else None,
            "burst_ttfb_p50_ms": pct(self.burst_ttfb_ms, 50),
            "burst_ttfb_p99_ms": pct(self.burst_ttfb_ms, 99),
        }


def _request(host: str, port: int, path: str, key: str, body: dict, extra: dict | None = None) -> bytes:
    payload = json.dumps(body).encode()
    more = "".join(f"{name}: {value}\r\n" for name, value in (extra or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\n{more}Accept: text/event-stream\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _read_head(reader) -> tuple[int, dict]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


class _Dechunk:
    """Incremental chunked-transfer decoding: feed() what arrived, get the payload found so far."""

    def __init__(self):
        self.buf, self.left, self.state, self.done = b"", 0, "size", False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = []
        while not self.done:
            if self.state == "data":
                piece = self.buf[: self.left]
                out.append(piece)
                self.buf, self.left = self.buf[len(piece) :], self.left - len(piece)
                if self.left:
                    break
                self.state = "crlf"
            elif self.state == "crlf" or self.state == "end":
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b"\r\n":
                    raise ValueError("bad chunk framing")
                self.buf, self.done = self.buf[2:], self.state == "end"
                self.state = "size"
            else:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    break
                self.left = int(self.buf[:end].split(b";")[0].strip() or b"0", 16)
                self.buf = self.buf[end + 2 :]
                self.state = "data" if self.left else "end"
        return b"".join(out)


async def _read_body(reader, headers, done: bytes = DONE) -> tuple[float | None, bool]:
    """Read the body to its end, one await per network read; returns (when the first `data:`
    arrived, whether `done` was seen)."""
    first, tail, seen = None, b"", False
    chunked = headers.get("transfer-encoding", "").lower() == "chunked"
    decoder = _Dechunk() if chunked else None
    remaining = None if chunked else int(headers.get("content-length", "0"))
    while (decoder is not None and not decoder.done) or (remaining is not None and remaining > 0):
        data = await reader.read(65536 if remaining is None else min(remaining, 65536))
        if not data:
            raise ConnectionError("closed mid-body")
        if decoder is not None:
            data = decoder.feed(data)
        else:
            remaining -= len(data)
        if first is None and b"data:" in data:
            first = time.perf_counter()
        window = tail + data
        seen = seen or done in window
        tail = window[-64:]
    return first, seen


def window_share(started: float, ended: float, window: tuple) -> float:
    """The share of a completed stream's time that fell inside the window (0 to 1)."""
    inside = min(ended, window[1]) - max(started, window[0])
    return max(inside, 0.0) / (ended - started) if ended > started else float(window[0] <= ended <= window[1])


async def one_stream(
    conn, request: bytes, stats: StreamStats, done: bytes = DONE, burst: list | None = None
) -> bool:
    reader, writer = conn
    counting = stats.counting  # as the stream opened: one opened in the warm-up is not timed
    started = time.perf_counter()
    writer.write(request)
    status, headers = await _read_head(reader)
    first, seen = await _read_body(reader, headers, done)
    if status != 200:
        stats.errors += 1
        return headers.get("connection", "").lower() != "close"
    if not seen:
        stats.dropped += 1
        return False
    ended = time.perf_counter()
    stats.in_window += window_share(started, ended, stats.window)
    if burst is not None:
        burst.append(((first or ended) - started) * 1000)
    if counting:
        stats.completed += 1
        stats.ttfb_ms.append(((first or ended) - started) * 1000)
        stats.total_ms.append((ended - started) * 1000)
    return headers.get("connection", "").lower() != "close"


async def _worker(host, port, request, deadline, stats, done=DONE):
    conn, burst = None, stats.burst_ttfb_ms
    while time.perf_counter() < deadline:
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port, limit=2**20)
            kept = await one_stream(conn, request, stats, done, burst)
            burst = None  # only the first stream of each worker is the burst's
            if not kept:
                conn[1].close()
                conn = None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            stats.errors += 1
            if conn:
                conn[1].close()
            conn = None
            await asyncio.sleep(0.05)
    if conn:
        conn[1].close()


async def run(
    host: str,
    port: int,
    path: str,
    key: str,
    body: dict,
    concurrency: int,
    seconds: float,
    headers: dict | None = None,
    done: bytes = DONE,
    warmup: float = 0.0,
    on_window=None,
) -> dict:
    stats = StreamStats(counting=not warmup)
    request = _request(host, port, path, key, body, headers)
    started = time.perf_counter()
    deadline = started + warmup + seconds
    stats.window = (started + warmup, deadline)
    workers = asyncio.gather(
        *(_worker(host, port, request, deadline, stats, done) for _ in range(concurrency))
    )
    if warmup:
        await asyncio.sleep(warmup)
        stats.counting, started = True, time.perf_counter()
        if on_window is not None:  # e.g. the bench reading the target's CPU time
            on_window()
    await workers
    stats.elapsed = time.perf_counter() - started
    return stats.summary()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--key", default="bench")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    body = {"model": args.model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    print(
        json.dumps(
            asyncio.run(run(args.host, args.port, args.path, args.key, body, args.concurrency, args.seconds))
        )
    )
