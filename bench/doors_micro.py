"""CPU per event of the front doors' stream rendering, in-process (no sockets, no database): a
small change to a door shows here where the doors bench's rounds swing too much to show it.

  .venv/bin/python bench/doors_micro.py [--replies N]

A 45-event Anthropic reply goes through the Anthropic adapter's mapper, the gateway's join per read
(llm.streaming; parsed mode where the checkout has it) and each door's rendering, all measured: the Responses
door and the Messages door behind that translated vendor; then OpenAI-compatible bytes through the
Messages door (the doors bench's Messages point). Prints microseconds of CPU per event. To compare
two versions, run it in each checkout (a checkout from before parsed mode sends the bytes).
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")

import django  # noqa: E402

django.setup()

from llm.dialects.anthropic_reply import StreamTranslator, anthropic_events  # noqa: E402
from llm.front.responses import reply  # noqa: E402
from llm.front.responses.events import ResponseEvents  # noqa: E402
from llm.front.responses.relay import Relay  # noqa: E402
from llm.providers.anthropic import _StreamMapper  # noqa: E402
from llm.providers.base import ChunkBuilder, sse  # noqa: E402

try:
    from llm.streaming import _together  # noqa: E402
except ImportError:  # a checkout from before parsed mode
    _together = None

WORDS = [f"word{i} " for i in range(40)]
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": []}
EVENTS = [
    {"type": "message_start", "message": {**MESSAGE, "usage": {"input_tokens": 12, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}} for w in WORDS),
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 40}},
    {"type": "message_stop"},
]
RAW = [json.dumps(event).encode() for event in EVENTS]
USAGE = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52, "cost_usd": 0.0001}
TAIL = [
    sse({"id": "x", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


def translated_parts() -> list:
    """What llm.streaming hands a door for the Anthropic reply, one read per vendor event."""
    mapper, parts = _StreamMapper("claude-haiku-4-5", json_tool=False), []
    for raw in RAW:
        pieces = [piece for piece in mapper.feed(raw) if not piece.usage_only]  # the bill holds it back
        if pieces:
            joined = b"".join(p.data for p in pieces) if _together is None else _together(pieces, parsed=True)
            parts.append(joined)
    return parts + TAIL


def passthrough_parts() -> list:
    builder = ChunkBuilder(model="m")
    chunks = [builder.chunk({"role": "assistant", "content": ""})]
    chunks += [builder.chunk({"content": w}) for w in WORDS] + [builder.chunk({}, "stop")]
    return [sse(chunk) for chunk in chunks] + TAIL


async def _each(parts):
    for part in parts:
        yield part


async def responses_door() -> None:
    shell = reply.shell({"model": "m"}, response_id="resp_1", slug="m", status="in_progress")

    async def done(response: dict) -> None:
        pass

    async for _ in Relay(ResponseEvents(shell), done).run(_each(translated_parts())):
        pass


async def messages_door(parts_of) -> None:
    async for _ in anthropic_events(_each(parts_of()), StreamTranslator("m", 12)):
        pass


async def main(replies: int) -> None:
    cases = [
        ("Responses door, Anthropic events", responses_door, len(RAW)),
        ("Messages door, Anthropic events", lambda: messages_door(translated_parts), len(RAW)),
        (
            "Messages door, OpenAI-compatible bytes",
            lambda: messages_door(lambda: passthrough),
            len(WORDS) + 4,
        ),
    ]
    passthrough = passthrough_parts()  # the vendor's bytes, made once: only the door is measured
    mode = "bytes (before parsed mode)" if _together is None else "parsed mode"
    for name, once, events in cases:
        for _ in range(replies // 20):
            await once()
        started = time.process_time()
        for _ in range(replies):
            await once()
        spent = time.process_time() - started
        print(f"{name}: {1e6 * spent / replies / events:.2f} us of CPU per event ({mode})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=2000)
    asyncio.run(main(parser.parse_args().replies))
