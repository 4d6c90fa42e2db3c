"""The fused relay's timers and flow control: keep-alives while the vendor is silent, the idle
timeout, and a client whose transport is full (the relay waits, as uvicorn's send would)."""

import asyncio
from types import SimpleNamespace

from uvicorn.protocols.http.flow_control import FlowControl

from gpuniq_site.direct_send import ChunkedWriter
from llm.providers.base import KEEPALIVE

from .fused_harness import CHUNKED_HEAD, Outcome, Vendor, relay
from .test_fused_relay import one_event_per_read


async def until(condition, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


def keepalives(outcome: Outcome) -> int:
    return sum(KEEPALIVE in chunk for _, chunk in outcome.frames)


async def silent_midway(fused: bool) -> Outcome:
    """Two events, silence until a keep-alive went out, then the rest of the stream."""
    reads = one_event_per_read(["a", "b", "c"])
    vendor, outcome = Vendor(CHUNKED_HEAD, [*reads[:2], None, *reads[2:]]), Outcome()
    running = asyncio.ensure_future(relay(vendor, True, fused, outcome=outcome))
    await until(lambda: keepalives(outcome) >= 1, "a keep-alive while the vendor is silent")
    vendor.resume.set()
    return await running


async def test_vendor_silence_midway_gets_keepalives_then_the_stream_carries_on(settings):
    settings.GPUNIQ_KEEPALIVE_SECONDS = 0.05
    generic, fused = await silent_midway(False), await silent_midway(True)
    assert fused.error is generic.error is None and fused.bill == generic.bill
    assert fused.body.replace(b"d\r\n" + KEEPALIVE + b"\r\n", b"") == generic.body.replace(
        b"d\r\n" + KEEPALIVE + b"\r\n", b""
    )
    assert keepalives(fused) >= 1 and fused.direct >= 3 and fused.fed == 1


async def test_vendor_silent_past_the_idle_timeout_fails_both_paths_alike(settings):
    settings.GPUNIQ_KEEPALIVE_SECONDS, settings.GPUNIQ_STREAM_IDLE_TIMEOUT = 0.05, 0.2
    reads = one_event_per_read(["a", "b"])
    outcomes = [await relay(Vendor(CHUNKED_HEAD, [*reads[:2], None]), False, fused) for fused in (0, 1)]
    for outcome in outcomes:
        assert outcome.error == ("timeout", "timeout (None): the provider stopped sending")
        assert keepalives(outcome) >= 2 and outcome.bill[0] == 1
    assert outcomes[1].direct >= 2  # its keep-alives went straight to the client


async def test_a_full_client_transport_holds_the_relay_until_it_drains():
    flow = FlowControl(None)  # type: ignore[arg-type]
    cycle = SimpleNamespace(disconnected=False, flow=flow)
    flow.pause_writing()
    vendor, outcome = Vendor(CHUNKED_HEAD, one_event_per_read(["a", "b", "c"])), Outcome()
    running = asyncio.ensure_future(relay(vendor, True, True, cycle=cycle, outcome=outcome))
    await until(lambda: flow._is_writable_event._waiters, "the relay waiting for the transport")
    assert outcome.direct == 1 and vendor._unread()  # one write, and the next read not taken
    flow.resume_writing()
    done = await running
    assert done.error is None and done.direct == 3  # a, b, c (the usage chunk waits for its cost)
    assert done.fed == 1 and done.pooled == 1


def test_the_writer_writes_nothing_once_the_client_is_gone():
    frames: list[bytes] = []
    cycle = SimpleNamespace(
        disconnected=False, flow=FlowControl(None), transport=SimpleNamespace(write=frames.append)
    )  # type: ignore[arg-type]
    writer = ChunkedWriter(cycle)
    writer.write(b"data: x\n\n")
    cycle.disconnected = True
    writer.write(b"data: y\n\n")
    assert frames == [b"9\r\ndata: x\n\n\r\n"]
