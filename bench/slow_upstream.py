"""A slow-stream fake upstream: every POST gets an OpenAI SSE stream of 50 chunks sent 20 ms
apart (about one second), then a usage chunk and [DONE]. Plain asyncio (uvloop), HTTP/1.1 keep-alive.
A POST to /v1/messages gets the same stream in Anthropic's Messages events instead (message_start,
content_block_start, 50 content_block_delta, content_block_stop, message_delta with usage, message_stop).

It shares two cores with what it measures, so it does as little as it can per chunk: the framed
events are built once, and the writer waits for the socket only when its buffer backs up.

BENCH_SLOW_CHUNKS and BENCH_SLOW_GAP change the stream's shape (e.g. 1 and 1.0: a one-second
stream of one content event), to tell a stream's setup from its events (docs/performance.md)."""

import asyncio
import json
import os
import sys

CHUNKS = int(os.environ.get("BENCH_SLOW_CHUNKS", "50"))
GAP = float(os.environ.get("BENCH_SLOW_GAP", "0.020"))


def _event(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta, finish=None, choices=True, usage=None) -> bytes:
    obj = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "slow",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage:
        obj["usage"] = usage
    return _event(obj)


def _framed(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """The request line, once the request's head and body are read."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


_USAGE = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
FIRST = _framed(_chunk({"role": "assistant", "content": ""}))
TOKENS = [_framed(_chunk({"content": f"w{i} "})) for i in range(CHUNKS)]
TAIL = (
    _framed(_chunk({}, finish="stop"))
    + _framed(_chunk({}, choices=False, usage=_USAGE))
    + _framed(b"data: [DONE]\n\n")
    + b"0\r\n\r\n"
)


def _anthropic(obj) -> bytes:
    return _framed(f"event: {obj['type']}\n".encode() + _event(obj))


A_FIRST = _anthropic(
    {
        "type": "message_start",
        "message": {
            "id": "msg_slow",
            "type": "message",
            "role": "assistant",
            "model": "slow",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    }
) + _anthropic({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
A_TOKENS = [
    _anthropic({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{i} "}})
    for i in range(CHUNKS)
]
A_TAIL = (
    _anthropic({"type": "content_block_stop", "index": 0})
    + _anthropic(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": CHUNKS},
        }
    )
    + _anthropic({"type": "message_stop"})
    + b"0\r\n\r\n"
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    try:
        while line := await _read_request(reader):
            first, tokens, tail = (
                (A_FIRST, A_TOKENS, A_TAIL) if b"/v1/messages" in line else (FIRST, TOKENS, TAIL)
            )
            writer.write(HEAD + first)
            for token in tokens:
                await asyncio.sleep(GAP)
                writer.write(token)
                if transport.get_write_buffer_size() > 65536:
                    await writer.drain()
            writer.write(tail)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
