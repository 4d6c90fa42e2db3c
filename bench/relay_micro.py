"""CPU per vendor read of the fused relay (llm.providers.openai_relay), in-process: the Python that
runs for every network read of every pass-through stream, with no socket and no event loop.

  .venv/bin/python bench/relay_micro.py [--reads N] [--runs R]

A stream's reads as the bench's slow upstream sends them (one HTTP chunk holding one ordinary
content event each, the vendor's model id swapped for the slug) go through the transport feed's
data_received, the relay and the direct writer, into a transport that only counts bytes. Prints
nanoseconds of CPU per read (median and best of R runs). To compare two versions, run it in each
checkout, from that checkout's directory.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")

import django  # noqa: E402

django.setup()

from uvicorn.protocols.http.flow_control import FlowControl  # noqa: E402

from gpuniq_site.direct_send import ChunkedWriter  # noqa: E402
from llm.chat import Bill  # noqa: E402
from llm.providers.openai_compat import _model_swapper, _piece, _without_null_usage  # noqa: E402
from llm.providers.openai_relay import PassThrough, Relay  # noqa: E402
from llm.providers.relay_feed import Feed  # noqa: E402
from llm.providers.wire_body import ChunkedDecoder  # noqa: E402


class Counting:
    """The client's transport: counts what it is given."""

    written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False


def chunk_of(text: str) -> bytes:
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "slow",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    data = b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(data), data)


def one_run(reads: list[bytes]) -> float:
    decoder = ChunkedDecoder(65536)
    response = SimpleNamespace(
        chunked_decoder=lambda: decoder,
        ticker=SimpleNamespace(last_event=0.0),
        sse_rest=b"",
        done=False,
        ended=False,
    )
    swap = _model_swapper("MiniMax-M2.7")
    _piece(decoder.whole_chunks(reads[0])[0][6:-2], swap)  # the first event, as the provider reads it
    stream = PassThrough(response, swap, True, _piece, _without_null_usage)
    client = SimpleNamespace(pause_reading=lambda: None, resume_reading=lambda: None)
    cycle = SimpleNamespace(disconnected=False, flow=FlowControl(client), transport=Counting())
    bill = Bill(SimpleNamespace(started=0.0))  # type: ignore[arg-type]
    relay = Relay(stream, bill, ChunkedWriter(cycle), time.monotonic)
    relay.started = relay.last = time.monotonic()
    relay.idle = relay.total = 1e9
    feed = Feed(relay)
    started = time.process_time()
    for data in reads[1:]:
        feed.data_received(data)
    took = time.process_time() - started
    if feed.error is not None or feed.outcome is not None or not bill.chars:
        raise SystemExit(f"the relay did not take the reads: {feed.error or feed.outcome}")
    return took / (len(reads) - 1) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    reads = [chunk_of(f"tok{n % 50} ") for n in range(args.reads + 1)]
    took = sorted(one_run(reads) for _ in range(args.runs))
    median = statistics.median(took)
    print(f"fused relay, one event per read: {median:.0f} ns of CPU per read (best {took[0]:.0f})")


if __name__ == "__main__":
    main()
