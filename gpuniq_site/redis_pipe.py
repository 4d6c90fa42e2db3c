"""A lean Redis client for the commands every API request sends (the admission script of
accounts.gate): one connection per event loop, the commands issued during one turn of the loop
written together, their replies read in order (hiredis parses them).

Why not redis-py here: its asyncio client costs ~100 µs of CPU per call (pool checkout, command
packing and reply parsing in Python layers), this one 5-20 µs, and under load many requests share
one write and one read instead of one each. Everything else keeps using redis-py
(gpuniq_site.shared_state).

Failures raise what redis-py raises, so callers handle both alike: redis.ConnectionError (also
when the server closes the connection), redis.TimeoutError (no reply within TIMEOUT; the
connection is then dropped, since later replies could no longer be matched), and
redis.ResponseError for an error reply (e.g. NOSCRIPT). A failed connection is replaced on the
next call. URLs other than redis:// and unix:// (TLS) get None: the caller uses redis-py.
"""

import asyncio
import functools
import weakref
from typing import Any, cast
from collections import deque

import hiredis
import redis
from django.conf import settings
from redis.connection import SSLConnection, parse_url

from .loops import on_loop_close

TIMEOUT = 2.0  # seconds, as shared_state's redis-py pools (socket and connect timeouts)
_pipes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pipe]" = weakref.WeakKeyDictionary()


def _encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if not isinstance(arg, bytes):
            arg = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """One connection: a command goes out at once when none is waiting for its reply, else with
    the others queued during this turn of the loop, in one write; each
    reply to the oldest waiting future (a caller that gave up leaves a cancelled future: its reply is
    read and dropped)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.WriteTransport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.out: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # a TCP connection's transport

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.closed or self.transport is None:
            raise redis.ConnectionError("connection to Redis closed")
        if not self.waiting and not self.out:  # nothing to share a write with: no wait for the next turn
            self.transport.write(command)
        else:
            if not self.out:
                self.loop.call_soon(self._flush)
            self.out.append(command)
        future = self.loop.create_future()
        self.waiting.append(future)
        return future

    def _flush(self) -> None:
        if not self.closed and self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.waiting:  # a reply nobody asked for: the stream cannot be trusted
                self.abort(redis.ConnectionError("unexpected reply from Redis"))
                return
            future = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(redis.ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def abort(self, error: Exception) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        self.closed = True
        self.out.clear()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class Sent:
    """A command on its way: its reply, awaited under the client's timeout."""

    def __init__(self, protocol: _Protocol, future: "asyncio.Future[Any]"):
        self.protocol, self.future = protocol, future

    async def reply(self) -> Any:
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self.future  # cancelled with its caller: the reply is then read and dropped
        except TimeoutError:
            self.protocol.abort(redis.TimeoutError("Redis did not answer in time"))
            raise redis.TimeoutError("Redis did not answer in time") from None

    def drop(self) -> None:
        """Nobody will read the reply (it is read from the socket and dropped)."""
        self.future.cancel()


class Pipe:
    """The running loop's connection, made on first use (and again after a failure)."""

    def __init__(self, url: str):
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py is untyped here
        self.protocol: _Protocol | None = None
        self.connecting: asyncio.Future[_Protocol] | None = None

    async def call(self, *args: Any) -> Any:
        protocol = self.protocol
        if protocol is None or protocol.closed:
            protocol = await self._connection()
        return await Sent(protocol, protocol.send(_encode(args))).reply()

    def send_now(self, *args: Any) -> "Sent | None":
        """Send the command in this step, if connected (else None: use call()); its reply comes
        from Sent.reply(), so the caller can do other work while Redis answers."""
        protocol = self.protocol
        if protocol is None or protocol.closed:
            return None
        return Sent(protocol, protocol.send(_encode(args)))

    async def _connection(self) -> _Protocol:
        if self.connecting is None:
            self.connecting = asyncio.ensure_future(self._connect())
        connecting = self.connecting
        try:
            protocol = self.protocol = await asyncio.shield(connecting)
            return protocol
        finally:
            if self.connecting is connecting and connecting.done():
                self.connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            async with asyncio.timeout(TIMEOUT):
                if options.get("path"):
                    _, protocol = await loop.create_unix_connection(lambda: _Protocol(loop), options["path"])
                else:
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(loop), options.get("host", "localhost"), options.get("port", 6379)
                    )
                setup = []
                if options.get("password"):
                    auth = [options["username"]] if options.get("username") else []
                    setup.append(protocol.send(_encode(("AUTH", *auth, options["password"]))))
                if options.get("db"):
                    setup.append(protocol.send(_encode(("SELECT", options["db"]))))
                for reply in setup:
                    await reply
        except TimeoutError:
            raise redis.TimeoutError("connecting to Redis timed out") from None
        except OSError as exc:
            raise redis.ConnectionError(f"could not connect to Redis: {exc}") from None
        return protocol

    def close(self) -> None:
        if self.protocol is not None and not self.protocol.closed:
            self.protocol.abort(redis.ConnectionError("closed"))


def is_noscript(exc: BaseException) -> bool:
    """Redis does not know the script (it restarted, or SCRIPT FLUSH): send it whole with EVAL.
    redis-py raises NoScriptError without the NOSCRIPT prefix; this client keeps Redis' message."""
    return isinstance(exc, redis.exceptions.NoScriptError) or "NOSCRIPT" in str(exc)


@functools.lru_cache(maxsize=8)
def _supported(url: str) -> bool:
    if not url:
        return False
    options = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py is untyped here
    return options.get("connection_class") is not SSLConnection


def pipe() -> Pipe | None:
    """This event loop's pipe, or None when Redis is not configured or the URL needs redis-py (TLS)."""
    url = settings.REDIS_URL
    if not _supported(url):
        return None
    loop = asyncio.get_running_loop()
    found = _pipes.get(loop)
    if found is None:
        found = _pipes[loop] = Pipe(url)
    return found


@on_loop_close
async def close_pipe() -> None:
    found = _pipes.pop(asyncio.get_running_loop(), None)
    if found is not None:
        found.close()
