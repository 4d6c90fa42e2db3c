"""OpenAI-compatible vendors (OpenAI, xAI, DeepSeek, MiniMax, OpenRouter, vLLM, Ollama, ...).

Every request field is forwarded unchanged except `model`. Streams pass through as the
upstream's own bytes, with only the model id swapped for our slug; billing needs the usage and
the text length, read with a byte scan from ordinary content events and with a JSON parse from
the rest (usage, errors, tool calls, anything with escapes).
"""

import json
import re
from collections.abc import AsyncGenerator

from ..upstreams import Upstream
from . import openai_responses
from .base import SILENCE, ChatRequest, Route, StreamPiece, UpstreamError, Usage
from .http import post_json, post_stream, scrub, sse_data
from .openai_errors import parse_error
from .openai_relay import PassThrough
from .wire import TICK


def _text_chars(chunk: dict) -> int:
    total = 0
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        for key in ("content", "reasoning_content", "reasoning"):
            value = delta.get(key)
            if isinstance(value, str):
                total += len(value)
        for call in delta.get("tool_calls") or ():
            total += len((call.get("function") or {}).get("arguments") or "")
    return total


class OpenAICompatProvider:
    def __init__(self, upstream: Upstream, name: str = "openai"):
        self.upstream = upstream
        self.name = name
        self._headers = {"Authorization": f"Bearer {upstream.api_key}", "Content-Type": "application/json"}

    def _body(self, request: ChatRequest, route: Route, stream: bool) -> dict:
        body = dict(request.body)
        body["model"] = route.upstream_model
        if (
            request.max_output_tokens
            and body.get("max_tokens") is None
            and body.get("max_completion_tokens") is None
        ):
            # the limit the hold was sized for (llm/bounds.py): without it the vendor's own default applies
            body["max_completion_tokens" if self.name == "openai" else "max_tokens"] = (
                request.max_output_tokens
            )
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        return body

    @property
    def speaks_responses(self) -> bool:
        """OpenAI itself serves the Responses API; other compatible vendors get Chat Completions."""
        return self.name == "openai"

    async def complete(self, request: ChatRequest, route: Route) -> tuple[dict, Usage | None]:
        if request.responses_body is not None and self.speaks_responses:
            return await openai_responses.complete(self.upstream, self._headers, request, route)
        data = await post_json(
            self.upstream,
            "/chat/completions",
            headers=self._headers,
            body=self._body(request, route, stream=False),
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        )
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamError("malformed", "the provider's reply has no choices")
        data["model"] = request.slug
        return data, Usage.from_openai(data.get("usage"))

    async def stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
        if request.responses_body is not None and self.speaks_responses:
            async for piece in openai_responses.stream(self.upstream, self._headers, request, route):
                yield piece
            return
        swap = _model_swapper(request.slug)
        async with post_stream(
            self.upstream,
            "/chat/completions",
            headers=self._headers,
            body=self._body(request, route, stream=True),
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        ) as response:
            relay = self._pass_through(response, swap, request)
            async for data in sse_data(response):
                if data is TICK:
                    yield SILENCE
                    continue
                if data == b"[DONE]":
                    return
                if not request.include_usage and b'"usage":null' in data:
                    data = _without_null_usage(data)
                piece = _piece(data, swap, response.more)
                if relay is not None:  # the first piece offers the fused relay (llm.streaming)
                    piece.relay, relay = relay, None
                yield piece
        raise UpstreamError("connect", "the stream ended without [DONE]")

    def _pass_through(self, response, swap, request: ChatRequest) -> PassThrough | None:
        """The stream as llm.streaming may hand it to the fused relay; None for the sandbox."""
        if self.upstream.sandbox:
            return None
        return PassThrough(response, swap, request.include_usage, _piece, _without_null_usage)


def _without_null_usage(data: bytes) -> bytes:
    """The gateway always asks for usage; OpenAI then puts `"usage":null` on every chunk. A client
    that did not ask for usage gets the chunks as OpenAI would have sent them to it: without."""
    return data.replace(b',"usage":null', b"").replace(b'"usage":null,', b"")


def _plain_text_chars(data: bytes) -> int | None:
    """The text length of an ordinary content event, read without parsing it — or None, and the
    event gets the full parse. Only for an event with no backslash at all: then every quote in it
    delimits a JSON string, so a key can be found by its bytes. Anything that could carry usage,
    an error, tool calls, reasoning or a second content string takes the full parse."""
    found = _plain_text(data)
    return None if found is None else found[0]


def _plain_text(data: bytes) -> tuple[int, int, int] | None:
    """_plain_text_chars, with where the content string's quotes are (-1, -1 for no string)."""
    if b"\\" in data or data[:1] != b"{" or data[-1:] != b"}" or b'"error"' in data:
        return None
    if (
        b'"tool_calls"' in data
        or b'"reasoning' in data
        or (b'"usage"' in data and b'"usage":null' not in data)
    ):
        return None
    at = data.find(b'"content":')
    if at < 0:
        return 0, -1, -1
    if data.find(b'"content":', at + 10) >= 0:
        return None
    start = at + 10
    while data[start : start + 1] == b" ":
        start += 1
    if data.startswith(b"null", start):
        return 0, -1, -1
    end = data.find(b'"', start + 1)
    if data[start : start + 1] != b'"' or end < 0:
        return None
    return len(data[start + 1 : end].decode("utf-8", "strict")), start, end


def _piece(data: bytes, swap, more: bool = False) -> StreamPiece:
    try:
        known = swap.like_last(data)
        if known is not None:  # shaped as the last content event: only its text is new
            return StreamPiece(data=known[0], text_chars=known[1], more=more)
        plain = _plain_text(data)
    except UnicodeDecodeError:
        plain = None
    if plain is not None:  # most events of a stream: forwarded without a parse
        chars, start, end = plain
        if start > 0:
            swap.remember(data, start, end)
        return StreamPiece(data=b"data: " + swap(data) + b"\n\n", text_chars=chars, more=more)
    try:
        chunk = json.loads(data)
    except ValueError:
        raise UpstreamError("malformed", "the provider sent an unreadable stream event") from None
    if not isinstance(chunk, dict):
        raise UpstreamError("malformed", "the provider sent an unreadable stream event")
    if "error" in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        raise UpstreamError("server", scrub(str(error.get("message", ""))))
    usage = Usage.from_openai(chunk.get("usage"))
    if usage is not None and not chunk.get("choices"):
        chunk["model"] = swap.slug
        return StreamPiece(data=b"", usage=usage, usage_only=True, chunk=chunk)
    return StreamPiece(
        data=b"data: " + swap(data) + b"\n\n", usage=usage, text_chars=_text_chars(chunk), more=more
    )


class _model_swapper:
    """Replace the top-level model id (the vendor's, which may be a dated variant of the one we
    asked for) with our slug in raw JSON bytes, without re-encoding the event.

    This runs on every event of every stream: the usual event (`"model":"<id>"` with no escapes)
    is handled with two finds; anything unusual goes to the regular expression."""

    _pattern = re.compile(rb'(?<!\\)("model"\s*:\s*)"(?:[^"\\]|\\.)*"')

    def __init__(self, slug: str):
        self.slug = slug
        self.value = json.dumps(slug).encode()
        self.replacement = rb"\1" + self.value.replace(b"\\", b"\\\\")
        # the last ordinary content event, cut around its text: (bytes before the text, bytes
        # after it, the framed and swapped bytes before it) — see like_last()
        self.shape: tuple[bytes, bytes, bytes] | None = None
        # the same event as one HTTP chunk of an SSE event, on both sides — see like_last_chunk()
        self.chunk_shape: tuple[bytes, bytes, bytes, bytes, int] | None = None

    def remember(self, data: bytes, start: int, end: int) -> None:
        """Keep the shape of an ordinary content event (_plain_text found its text between the quotes
        at `start` and `end`), if the model id it swaps lies before the text."""
        head = data[: start + 1]
        swapped = self(head)
        if swapped + data[start + 1 :] == self(data):
            tail, framed_head = data[end:], b"data: " + swapped
            self.shape = (head, tail, framed_head)
            # (an event of several data lines has a line break where the wire has "data:" too, so
            # no read matches its chunk shape)
            self.chunk_shape = (
                b"data: " + head,
                tail + b"\n\n\r\n",
                framed_head,
                tail,
                len(framed_head) + len(tail) + 2,  # the client's event, but for its text
            )

    def like_last(self, data: bytes) -> tuple[bytes, int] | None:
        """(the framed event for the client, its text length) when `data` has exactly the bytes of
        the remembered event before and after its text, and a text with no quote or backslash:
        then it is the same ordinary content event with another text, and needs no scan.
        UnicodeDecodeError for a text that is not UTF-8."""
        shape = self.shape
        if shape is None:
            return None
        head, tail, framed_head = shape
        if len(data) < len(head) + len(tail) or not (data.startswith(head) and data.endswith(tail)):
            return None
        text = data[len(head) : len(data) - len(tail)]
        if b'"' in text or b"\\" in text:
            return None
        chars = len(text) if text.isascii() else len(text.decode("utf-8", "strict"))
        return framed_head + text + tail + b"\n\n", chars

    def like_last_chunk(self, data: bytes, start: int) -> tuple[bytes, int] | None:
        """like_last() for a network read that is one whole HTTP chunk whose data, from `start`, is
        one SSE event: (the client's chunk, framed as direct_send frames it, and the text's length),
        or None. The caller has checked the chunk's size line. UnicodeDecodeError as like_last.
        (The shape is an event as the client got it: a vendor event whose `"usage":null` is still to
        be stripped does not match it.)"""
        shape = self.chunk_shape
        if shape is None:
            return None
        head, tail, framed_head, raw_tail, framed_len = shape
        text_start, text_end = start + len(head), len(data) - len(tail)
        if text_end < text_start or not (data.startswith(head, start) and data.endswith(tail)):
            return None
        text = data[text_start:text_end]
        if b'"' in text or b"\\" in text or b"\n" in text or b"\r" in text:
            return None
        chars = len(text) if text.isascii() else len(text.decode("utf-8", "strict"))
        return b"%x\r\n%b%b%b\n\n\r\n" % (framed_len + len(text), framed_head, text, raw_tail), chars

    def __call__(self, data: bytes) -> bytes:
        start = _string_value_at(data, data.find(b'"model"'))
        if start > 0:
            end = data.find(b'"', start + 1)
            if end > 0 and data.find(b"\\", start, end) < 0:
                return (
                    data
                    if data[start : end + 1] == self.value
                    else data[:start] + self.value + data[end + 1 :]
                )
        return self._pattern.sub(self.replacement, data, count=1)


def _string_value_at(data: bytes, key: int) -> int:
    """Where the string value of the key whose quote is at `key` begins (its opening quote), or -1."""
    if key <= 0 or data[key - 1] == 0x5C:  # absent, or an escaped quote inside some string
        return -1
    i, n = data.find(b":", key + 7, key + 16), len(data)
    if i < 0 or data[key + 7 : i].strip():
        return -1
    i += 1
    while i < n and data[i] in b" \t\r\n":
        i += 1
    return i if i < n and data[i] == 0x22 else -1
