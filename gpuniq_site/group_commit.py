"""Group commit for the event loop: work submitted while a flush runs goes out together in the
next flush — one database round trip and one commit for many requests.

There is no timer: a lone request is flushed at once (a batch of one), so the latency at low
load is unchanged; under load, batches grow by themselves to whatever arrived during the previous
flush. One flush runs at a time per lane, which also turns many connections fighting over one
hot row into one connection taking it once per batch.

The flush runs in a task of its own: a caller that is cancelled (its client went away) stops
waiting, but the work it submitted is still done and reported to everybody else in the batch.
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# flush(items) returns one outcome per item, in order: a result, or an exception for that item only
Flush = Callable[[list[Item]], Awaitable[list[Result | BaseException]]]
Orphan = Callable[[Item, Result], None]


class Lane(Generic[Item, Result]):
    """`orphan(item, result)` is called for work that succeeded after its caller stopped waiting
    (e.g. to release a hold nobody will settle)."""

    def __init__(
        self,
        flush: Flush[Item, Result],
        max_batch: int = 128,
        orphan: Orphan[Item, Result] | None = None,
    ) -> None:
        self.flush = flush
        self.orphan = orphan
        self.max_batch = max_batch
        self.pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.draining: asyncio.Task[None] | None = None
        self.batches = 0  # counters for tests and benchmarks
        self.items = 0

    async def submit(self, item: Item) -> Result:
        return await self.enqueue(item)  # cancelling this wait leaves the batch alone (see Lane._deliver)

    def enqueue(self, item: Item) -> "asyncio.Future[Result]":
        """Submit without waiting: the future gets the outcome. Cancelling it means nobody will
        read the outcome (`orphan` then gets it)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if self.draining is None:
            self.draining = asyncio.ensure_future(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                self.batches += 1
                self.items += len(batch)
                outcomes: list[Result | BaseException]
                try:
                    outcomes = await self.flush([item for item, _ in batch])
                except BaseException as exc:  # the flush itself broke: everybody in it hears why
                    outcomes = [exc] * len(batch)
                    if not isinstance(exc, Exception):
                        self._deliver(batch, outcomes)
                        raise
                self._deliver(batch, outcomes)
        finally:
            self.draining = None

    def _deliver(
        self, batch: list[tuple[Item, "asyncio.Future[Result]"]], outcomes: list[Result | BaseException]
    ) -> None:
        for (item, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its caller was cancelled and has gone
                if self.orphan is not None and not isinstance(outcome, BaseException):
                    self.orphan(item, outcome)
            elif isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


_lanes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Lane[Any, Any]]]" = (
    weakref.WeakKeyDictionary()
)


def lane(
    name: str,
    flush: Flush[Item, Result],
    max_batch: int = 128,
    orphan: Orphan[Item, Result] | None = None,
) -> Lane[Item, Result]:
    """The running loop's lane called `name` (each event loop has its own)."""
    lanes = _lanes.setdefault(asyncio.get_running_loop(), {})
    found = lanes.get(name)
    if found is None:
        found = lanes[name] = Lane(flush, max_batch, orphan)
    return found
