"""The Responses event stream a client receives, made from the gateway's stream body
(llm.streaming.stream_body, which bills). Two kinds of route feed it:

- translated routes send chat chunks: ResponseEvents renders them as typed events (the dicts
  themselves, from start_stream's parsed mode: no OpenAI bytes are made and parsed again);
- OpenAI's own Responses API (the pass-through) sends typed events already: they go out as they
  are, except that the response id becomes ours and response.completed waits for the cost.

The gateway ends its body with the chat usage chunk (cost included) and `data: [DONE]`, or with an
error event; neither is sent on as such. Whatever the end, the gateway's body is closed, so a
client that leaves stops the vendor and pays for what was produced (stream_body guarantees it).
"""

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from ...providers.base import Parsed, Usage
from ...providers.sse import parse_event
from . import reply
from .events import ResponseEvents, frame

KEEPALIVE = b": keep-alive\n\n"


class Relay:
    def __init__(self, events: ResponseEvents, on_done: Callable[[dict], Awaitable[None]]):
        self.events = events
        self.on_done = on_done
        self.native: dict | None = None  # the pass-through's final response event, held for its cost
        self.cost = None
        self.ended = False
        self.started = False  # translated: response.created went out (the pass-through sends its own)

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self.events.start()

    async def _event(self, raw: bytes) -> bytes:
        if raw.startswith(b":"):
            return KEEPALIVE
        name, data = parse_event(raw)
        if data is None or self.ended:
            return b""
        if data == b"[DONE]":
            return await self._end()
        obj = json.loads(data)
        if name or str(obj.get("type", "")).startswith("response."):
            self.started = True
            return self._native(obj, raw)
        if "error" in obj:
            self.ended = True
            return self._start() + self.events.failed(obj["error"])
        if not obj.get("choices") and isinstance(obj.get("usage"), dict):
            self.cost = obj["usage"].get("cost_usd")
            if self.native is not None:
                return await self._end()
        return self._start() + self.events.chunk(obj)

    def _native(self, event: dict, raw: bytes) -> bytes:
        response = event.get("response")
        if isinstance(response, dict):
            response.update({k: self.events.response.get(k) for k in reply.OURS})
            if event["type"] in ("response.completed", "response.incomplete", "response.failed"):
                self.native = event
                return b""
            return frame(event)
        return raw + b"\n\n"

    async def _end(self) -> bytes:
        self.ended = True
        if self.native is not None:
            response = self.native["response"]
            if isinstance(response.get("usage"), dict) and self.cost is not None:
                response["usage"]["cost_usd"] = float(self.cost)
            self.events.response = response
            await self.on_done(response)
            return frame(self.native)
        usage = Usage.from_openai(self.events.usage_obj)
        body = self._start() + self.events.completed(usage, self.cost)
        await self.on_done(self.events.response)
        return body

    async def run(self, chunks: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            async for part in chunks:
                if type(part) is Parsed:  # translated chunks, as dicts (start_stream's parsed mode)
                    rendered = b"" if self.ended else self._start() + b"".join(map(self.events.chunk, part))
                    if rendered:
                        yield rendered
                    continue
                buffer += part
                out = []
                end = buffer.find(b"\n\n")
                while end >= 0:
                    out.append(await self._event(buffer[:end]))
                    buffer = buffer[end + 2 :]
                    end = buffer.find(b"\n\n")
                if any(out):
                    yield b"".join(out)
            if not self.ended:  # the body ended without [DONE]: the reply is not whole
                self.ended = True
                yield self._start() + self.events.failed({"message": "the stream ended early"})
        finally:
            await chunks.aclose()
