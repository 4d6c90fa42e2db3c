"""The keep-alive connections of llm.providers.wire: one pool of idle connections per event loop,
LIFO per upstream (warmest first), swept of expired and closed ones. When it is full, the connection
idle longest makes room, whichever upstream it is to: a burst of streams to one vendor must not
leave every other vendor's connections closed on return (a new TCP and TLS handshake per request)
until that burst's connections expire."""

import asyncio
from typing import Any

MAX_IDLE = 256  # idle keep-alive connections kept per event loop, all upstreams together
IDLE_EXPIRY = 60.0  # seconds an idle connection may wait in the pool
_SWEEP_EVERY = 5.0
_pools: dict = {}  # event loop -> Pool


class _Conn:
    __slots__ = ("key", "reader", "writer", "since")

    def __init__(self, key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.key, self.reader, self.writer, self.since = key, reader, writer, 0.0

    def alive(self) -> bool:
        return not (self.reader.at_eof() or self.writer.transport.is_closing())

    def close(self) -> None:
        """No wait_closed(): the peer learns at once, and nobody should wait for its FIN."""
        try:
            self.writer.close()
        except RuntimeError:  # its event loop is already closed; the socket dies with the transport
            pass


class Pool:
    """Idle keep-alive connections of one event loop, LIFO per upstream (warmest first)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.count = loop, 0
        self.idle: dict[tuple[Any, ...], list[_Conn]] = {}  # by (scheme, host, port)
        self.next_sweep = loop.time() + _SWEEP_EVERY

    def take(self, key) -> _Conn | None:
        """The most recently used live connection to `key`, dropping expired or dead ones."""
        now = self.loop.time()
        if now >= self.next_sweep:
            self.next_sweep = now + _SWEEP_EVERY
            self.sweep(now)
        queue = self.idle.get(key)
        while queue:
            conn = queue.pop()
            self.count -= 1
            if now - conn.since < IDLE_EXPIRY and conn.alive():
                return conn
            conn.close()
        return None

    def give(self, conn: _Conn) -> None:
        if not conn.alive():
            conn.close()
            return
        if self.count >= MAX_IDLE and not self._evict_oldest():
            conn.close()
            return
        conn.since = self.loop.time()
        self.idle.setdefault(conn.key, []).append(conn)
        self.count += 1

    def _evict_oldest(self) -> bool:
        """Close the connection idle longest, of any upstream (each queue's first is its oldest)."""
        queues = [queue for queue in self.idle.values() if queue]
        if not queues:
            return False
        oldest = min(queues, key=lambda queue: queue[0].since)
        oldest.pop(0).close()
        self.count -= 1
        return True

    def sweep(self, now: float | None) -> None:
        """Close the idle connections that expired or that the server closed (all, if `now` is None):
        a connection to an upstream nobody asks for any more would otherwise never be looked at."""
        old, self.idle, self.count = self.idle, {}, 0
        for conn in [conn for queue in old.values() for conn in queue]:
            if now is not None and now - conn.since < IDLE_EXPIRY and conn.alive():
                self.idle.setdefault(conn.key, []).append(conn)
                self.count += 1
            else:
                conn.close()


def pool() -> Pool:
    """This event loop's pool. Loops never share one: a connection belongs to the loop that opened it
    (worker threads and each asyncio.run of a job have their own loop). Pools of closed loops are dropped."""
    loop = asyncio.get_running_loop()
    found = _pools.get(loop)
    if found is None:
        for old in [old for old in list(_pools) if old.is_closed()]:  # list(): other threads may add
            gone = _pools.pop(old, None)
            if gone is not None:
                gone.sweep(None)
        found = _pools[loop] = Pool(loop)
    return found


async def close_pool() -> None:
    """Close this loop's idle connections (tests, shutdown)."""
    found = _pools.pop(asyncio.get_running_loop(), None)
    if found is not None:
        found.sweep(None)
