"""A lean asyncio HTTP/1.1 client for the chat providers' POSTs to their vendors.

Why not httpx here: on the chat hot path httpx/httpcore cost ~30% of the gateway's CPU (its
request model, header normalisation, per-call timeout and pool machinery), for what is always
the same exchange: one JSON POST to a known vendor, a Content-Length or chunked reply. This
module does only that: keep-alive pools per (scheme, host, port), one write per request, a
StreamReader-based response parser. Media code keeps using httpx (http.client()).

Failures surface as WireError (WireTimeout for timeouts); llm.providers.http maps them to
UpstreamError. Messages never carry the URL or any header value.
"""

import asyncio
import ssl
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .wire_body import TICK, ChunkedDecoder, Ticker
from .wire_pool import Pool, _Conn, close_pool, pool

__all__ = ["Headers", "Pool", "Response", "WireError", "WireTimeout", "close_pool", "pool", "post"]

LINE_LIMIT = 64 * 1024  # StreamReader limit: a longer line (or a longer response head) is rejected
READ_SIZE = 64 * 1024
WRITE_TIMEOUT = 30.0
DRAIN_TIMEOUT = 2.0  # how long a finished stream's unread tail may take to arrive (see Response.release)
DRAIN_LIMIT = 64 * 1024
_NO_BODY = frozenset({204, 304})
# what sockets, StreamReader limits and parsing raise; all become WireError (TimeoutError: WireTimeout)
FAILURES = _FAILURES = (TimeoutError, OSError, EOFError, ValueError, asyncio.LimitOverrunError)
_ssl_context: ssl.SSLContext | None = None
_draining: set = set()  # background tail reads (Response.release), referenced until done


class WireError(Exception):
    """The exchange failed in transport or framing (maps to UpstreamError("connect"))."""


class WireTimeout(WireError):
    """Connect, first byte, read-idle or write took too long (maps to UpstreamError("timeout"))."""


class _Stale(Exception):
    """A reused connection died before any response byte: safe to retry once on a new one."""


class Headers:
    """Case-insensitive response headers: what adapters' error parsers and retry_after() use.

    Repeated fields are joined with ", " on lookup, as httpx.Headers.get does."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items
        self._map: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._map[key] = self._map[key] + ", " + value if key in self._map else value

    def get(self, name: str, default=None):
        return self._map.get(name.lower(), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@lru_cache(maxsize=256)
def _target(url: str) -> tuple[tuple, str, str]:
    """((scheme, host, port), Host header value, request target) of a vendor URL, parsed once."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WireError("unsupported URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return (parts.scheme, parts.hostname, port), parts.netloc.rpartition("@")[2], target


def _request_bytes(host: str, target: str, headers: dict, body: bytes) -> bytes:
    """The whole request (head and body) as one buffer, so it goes out in one write."""
    fields = {
        "content-type": ("Content-Type", "application/json"),
        "accept-encoding": ("Accept-Encoding", "identity"),
        "user-agent": ("User-Agent", "gpuniq-gateway"),
    }
    for name, value in headers.items():
        fields[name.lower()] = (name, str(value))
    for banned in ("host", "content-length", "transfer-encoding", "connection"):
        fields.pop(banned, None)
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    for name, value in fields.values():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise WireError("header with a line break")  # would smuggle headers or a second request
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1") + body
    except UnicodeEncodeError:
        raise WireError("header value is not latin-1") from None


async def _connect(key: tuple, timeout: float) -> _Conn:
    global _ssl_context
    scheme, host, port = key
    tls = None
    if scheme == "https":
        tls = _ssl_context = _ssl_context or ssl.create_default_context()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None, limit=LINE_LIMIT
        )
    return _Conn(key, reader, writer)


async def _send(conn: _Conn, data: bytes, reused: bool) -> None:
    """One write; drain (under the write timeout) only if the kernel did not take it all at once."""
    if reused and not conn.alive():
        raise _Stale()
    conn.writer.write(data)
    if conn.writer.transport.get_write_buffer_size():
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                await conn.writer.drain()
        except ConnectionError:
            if reused:
                raise _Stale() from None
            raise


async def _read_head(conn: _Conn, first_byte: float, reused: bool) -> tuple[str, int, Headers]:
    """(HTTP version, status, headers) of the final response, skipping 1xx interim ones."""
    while True:
        try:
            async with asyncio.timeout(first_byte):
                head = await conn.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            if reused and not getattr(exc, "partial", b""):  # nothing received: the request had no effect
                raise _Stale() from None
            raise WireError("connection closed before the response") from None
        except asyncio.LimitOverrunError:
            raise WireError("response head too large") from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest.partition(" ")[0]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isascii() or not code.isdigit():
            raise WireError("malformed status line")
        items = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise WireError("malformed header line")
            items.append((name, value.strip()))
        if not 100 <= int(code) < 200 or code == "101":
            return version, int(code), Headers(items)
        reused = False


class Response:
    """A response whose body is read on demand; aclose() pools the connection if it was read to the end."""

    def __init__(self, conn: _Conn, pool_: Pool, version: str, status: int, headers: Headers, idle: float):
        self.status_code, self.headers = status, headers
        self._conn: _Conn | None = conn  # None once closed
        self._pool, self._idle = pool_, idle
        self._left: int | None  # body bytes still to read; None: until the server closes
        self._chunked = "chunked" in (headers.get("transfer-encoding") or "").lower()
        self._decoder = ChunkedDecoder(LINE_LIMIT) if self._chunked else None
        self._ticker: Ticker | None = None
        self.more = False  # set by llm.providers.http.sse_data
        self.sse_rest = b""  # sse_data's undecoded tail, where openai_relay carries on from
        self.ended = False  # openai_relay read the stream's last event: closing it pools the connection
        length = headers.get("content-length")
        self._reusable = version == "HTTP/1.1" and "close" not in (headers.get("connection") or "").lower()
        if status in _NO_BODY or status < 200:
            self._left, self._chunked, self._decoder = 0, False, None
        elif self._chunked:
            self._left, self._reusable = 0, self._reusable and length is None
        elif length is not None:
            if not (length.isascii() and length.isdigit()):
                raise WireError("bad content-length")
            self._left = int(length)
        else:  # neither: the body runs until the server closes, so the connection is spent
            self._left, self._reusable = None, False
        self.done = self._left == 0 and not self._chunked  # the whole body has been read

    async def _next(self, timed: bool = True) -> bytes:
        """The next piece of body (b"" only at the end). `timed`: one idle timeout per piece;
        streams read untimed and tick instead (aiter_bytes(tick=...), llm.streaming decides)."""
        if not timed:
            return await self._read()
        async with asyncio.timeout(self._idle):
            return await self._read()

    async def _read(self) -> bytes:
        if self._conn is None:
            raise WireError("the response is closed")
        reader = self._conn.reader
        if self._decoder is not None:
            while True:  # decode whatever has arrived: one await per network read, not per chunk
                data = self._take()
                if data or self.done:
                    return data
                more = await reader.read(READ_SIZE)
                if not more:
                    raise WireError("connection closed mid-body")
                self._decoder.feed(more)
        if self._left is None:
            data = await reader.read(READ_SIZE)
            self.done = not data
            return data
        data = await reader.read(min(self._left, READ_SIZE))
        if not data:
            raise WireError("connection closed mid-body")
        self._left -= len(data)
        self.done = self._left == 0
        return data

    def _take(self) -> bytes:
        """The chunked body's data decoded so far (b"" for none yet), noting its end."""
        assert self._decoder is not None
        data = self._decoder.take()
        if self._decoder.done:
            self.done, self._reusable = True, self._reusable and not self._decoder.extra
        return data

    def feed(self, more: bytes) -> bytes:
        """The body bytes in one network read (`more`) that arrived without the stream reader:
        the fused relay's transport feed (llm.providers.relay_feed). The same decoding as _read();
        bytes past the body's end make the connection unusable; bad framing raises ValueError."""
        if self._decoder is not None:
            self._decoder.feed(more)
            return self._take()
        if self._left is None:
            return more
        data = more[: self._left] if len(more) > self._left else more
        self._left -= len(data)
        self.done = self._left == 0
        self._reusable = self._reusable and len(data) == len(more)
        return data

    def chunked_decoder(self) -> ChunkedDecoder | None:
        """A chunked body's decoder, whose checks that a read is exactly whole chunks (one_chunk,
        whole_chunks) are the fused relay's fast paths; None for any other body."""
        return self._decoder

    def feed_eof(self) -> None:
        """The server closed its side, read by the transport feed: the end of a body that runs
        until then, or a body cut short (WireError, as _read() raises it)."""
        if self._left is None and self._decoder is None:
            self.done = True
            return
        raise WireError("connection closed mid-body")

    def hand_reads_to(self, protocol: asyncio.BaseProtocol) -> tuple[Any, Any, bytes] | None:
        """Have the connection's transport deliver its reads to `protocol` instead of the stream
        reader: (the transport, the protocol that had them, the bytes the reader had received
        and nobody had read yet, now taken out of it: the new protocol's first read). Give them
        back with take_reads_back(). None, and nothing changed, when the reader has seen the end
        or an error, holds more than a read's worth (it may have paused the transport), or the
        transport cannot switch protocols."""
        conn = self._conn
        if conn is None or self.done:
            return None
        reader, transport = conn.reader, conn.writer.transport
        # StreamReader has no public view of its buffer or of an end it has not handed out yet
        buffered, ended = getattr(reader, "_buffer", None), getattr(reader, "_eof", True)
        if buffered is None or ended or len(buffered) > READ_SIZE or reader.exception() is not None:
            return None
        if transport.is_closing() or not hasattr(transport, "set_protocol"):
            return None
        original = transport.get_protocol()
        transport.set_protocol(protocol)
        unread = bytes(buffered)
        buffered.clear()
        return transport, original, unread

    @staticmethod
    def take_reads_back(transport: Any, original: Any) -> None:
        """The stream reader gets the transport's reads again (after hand_reads_to)."""
        transport.set_protocol(original)
        if not transport.is_closing() and not transport.is_reading():
            transport.resume_reading()

    async def aiter_bytes(self, timed: bool = True, tick: float = 0.0):
        """The body as it arrives. `tick` > 0 (streams; implies untimed reads): yield TICK each
        time `tick` seconds pass without a call to saw_event() (wire_body.Ticker)."""
        ticker = self._ticker = Ticker(tick) if tick > 0 else None
        try:
            while not self.done:
                data = await (ticker.read(self._read) if ticker else self._next(timed))
                if data or data is TICK:
                    yield data
        except _FAILURES as exc:
            raise wrap(exc) from None
        finally:
            if ticker:
                ticker.stop()

    @property
    def ticker(self) -> Ticker | None:
        """The ticking read of aiter_bytes(tick=...) while it runs (openai_relay reads through it)."""
        return self._ticker

    read_some = _read  # one piece of body, untimed (openai_relay; failures as aiter_bytes lists them)

    def saw_event(self) -> None:
        if self._ticker is not None:
            self._ticker.saw_event()

    async def aread(self) -> bytes:
        return b"".join([data async for data in self.aiter_bytes()])

    def close(self) -> None:
        """Back to the pool only if the body was read to the end and the server allows reuse."""
        if self._ticker is not None:
            self._ticker.stop()
        conn, self._conn = self._conn, None
        if conn is not None:
            if self.done and self._reusable:
                self._pool.give(conn)
            else:
                conn.close()

    async def aclose(self) -> None:
        self.close()

    def release(self) -> None:
        """The caller is done (not abandoning): SSE adapters stop at their last event, before the
        chunked body's terminator arrives. Read that tail in the background and pool the connection,
        rather than close a warm connection for want of a few bytes."""
        if self.done or not self._reusable or self._conn is None:
            self.close()
            return
        task = asyncio.ensure_future(self._drain())
        _draining.add(task)
        task.add_done_callback(_draining.discard)

    async def _drain(self) -> None:
        budget = DRAIN_LIMIT
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                while not self.done and budget > 0:
                    budget -= len(await self._next())
        except (*_FAILURES, WireError):
            pass
        finally:
            self.close()


def wrap(exc: BaseException) -> WireError:
    if isinstance(exc, TimeoutError):
        return WireTimeout("timed out")
    return WireError(type(exc).__name__)


async def post(
    url: str, headers: dict, body: bytes, *, connect_timeout: float, first_byte: float
) -> Response:
    """POST `body` and return the response once its head arrived; the caller must aclose() it.

    A pooled connection that turns out dead before any response byte is replaced once by a new one."""
    key, host, target = _target(url)
    data = _request_bytes(host, target, headers, body)
    pool_ = pool()
    for attempt in (0, 1):
        conn = pool_.take(key) if attempt == 0 else None
        reused = conn is not None
        try:
            if conn is None:
                conn = await _connect(key, connect_timeout)
            await _send(conn, data, reused)
            version, status, headers_ = await _read_head(conn, first_byte, reused)
            return Response(conn, pool_, version, status, headers_, first_byte)
        except _Stale:
            assert conn is not None  # only a reused connection is found stale
            conn.close()
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, _FAILURES):
                raise wrap(exc) from None
            raise
    raise WireError("connection closed before the response")  # unreachable: attempt 1 is never `reused`
