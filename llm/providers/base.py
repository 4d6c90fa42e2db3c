"""The small interface every chat provider implements, and the canonical types it speaks.

A provider turns one canonical request (an OpenAI Chat Completions body, already validated)
into its vendor's wire format, and the vendor's reply back into OpenAI objects:
- complete(): an OpenAI `chat.completion` dict whose `model` is our slug, plus its Usage;
- stream(): StreamPieces, each one complete SSE event in OpenAI's framing.
Failures are UpstreamError; `retryable` ones before the first piece move on to the next route.
"""

import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol

from billing.pricing import TokenUsage
from gpuniq_site.ids import unique_hex


@dataclass(frozen=True)
class Usage(TokenUsage):
    """Token usage as vendors report it, convertible to and from OpenAI's `usage` object."""

    def to_openai(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    @classmethod
    def from_openai(cls, usage: dict | None) -> "Usage | None":
        if not isinstance(usage, dict):
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        cached = prompt_details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(cached),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )


@dataclass(frozen=True)
class Route:
    provider: str
    upstream_model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.upstream_model}"


@dataclass(frozen=True)
class AnthropicOriginal:
    """A request as it came through the Anthropic front door: the Messages body, the client's
    `anthropic-*` headers (betas, version) and whether it asked for `?beta=true`."""

    body: dict
    headers: dict
    beta: bool = False


@dataclass
class ChatRequest:
    """What the gateway asks of a provider. `body` is the client's Chat Completions body: every
    field is forwarded as the vendor allows; `body["model"]` is our slug and is replaced.

    `anthropic` is set when the client spoke Anthropic Messages: the Anthropic provider then
    forwards that body as sent (model swapped) and answers in Anthropic's own format (a Message
    dict; stream pieces that are Anthropic's named events); every other provider serves `body`,
    the front door's Chat Completions translation of it."""

    body: dict
    slug: str
    stream: bool
    include_usage: bool = False
    max_output_tokens: int | None = None
    request_id: str = ""
    first_byte_timeout: float = 120.0
    anthropic: AnthropicOriginal | None = None
    # the client's OpenAI Responses body, when it came through the Responses front door: a route to
    # OpenAI itself forwards it to the vendor's /responses; every other route serves `body`
    responses_body: dict | None = None


# kinds of upstream failure; the retryable ones may move on to the next route
RETRYABLE = {"connect", "timeout", "rate_limited", "server", "auth", "malformed", "not_found", "overloaded"}


class UpstreamError(Exception):
    def __init__(
        self, kind: str, message: str = "", *, status: int | None = None, retry_after: float | None = None
    ):
        self.kind = kind
        self.status = status
        self.message = message[:500]
        self.retry_after = retry_after
        super().__init__(f"{kind} ({status}): {self.message}")

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass
class StreamPiece:
    """One SSE event for the client, in OpenAI's framing (`data: {...}\\n\\n`).

    `usage` is set on the piece that carries the final usage; `usage_only` marks OpenAI's
    separate usage chunk (`choices: []`), which is parsed into `chunk` so the gateway can add
    `cost_usd` and drop it when the client did not ask for usage. `text_chars` counts the
    characters of content, reasoning and tool arguments, for billing a stream cut short.
    `more` says the next event has already arrived (a provider may leave it False).
    A translating provider makes TranslatedPiece, whose bytes are rendered from its chunk.
    """

    data: bytes
    usage: Usage | None = None
    usage_only: bool = False
    chunk: dict | None = None
    text_chars: int = 0
    finish_reason: str | None = None
    more: bool = False  # another event is already here: the gateway may send both in one write
    # the vendor's usage so far, where it reports one before the end (Anthropic's message_start
    # prompt count, Gemini's running totals): what a stream cut short is billed from
    partial_usage: "Usage | None" = None
    # on a pass-through stream's first piece: its openai_relay.PassThrough (llm.streaming may hand
    # the rest of the stream to the fused relay)
    relay: Any = None


class _Unrendered(bytes):
    pass


UNRENDERED: bytes = _Unrendered()  # TranslatedPiece.data until first read


def _rendered(piece: StreamPiece) -> bytes:
    data: bytes = piece.__dict__["_data"]
    if data is UNRENDERED:
        data = piece.__dict__["_data"] = sse(piece.chunk)
    return data


def _set_data(piece: StreamPiece, data: bytes) -> None:
    piece.__dict__["_data"] = data


class TranslatedPiece(StreamPiece):
    """A piece a translating provider built as a chat chunk dict (`of`): its OpenAI bytes are
    rendered from `chunk` when first read, and never when the client speaks another dialect
    (llm.streaming's parsed mode hands the chunk to a front door as it is). A subclass, so that a
    pass-through piece's `data` stays a plain attribute on the relay's path."""

    data = property(_rendered, _set_data)

    @classmethod
    def of(cls, chunk: dict, **fields: Any) -> "TranslatedPiece":
        return cls(data=UNRENDERED, chunk=chunk, **fields)


class Parsed(list):
    """The chat chunks (dicts) of one read, for a front door that renders them in its own dialect
    (llm.streaming's parsed mode): their OpenAI bytes are never made."""


# The comment the client gets for each keep-alive interval without an event.
KEEPALIVE = b": keep-alive\n\n"

# Not an event: the vendor has been silent for a keep-alive interval (providers pass wire.TICK
# on as this, and llm.streaming answers it with a keep-alive comment or an idle timeout).
SILENCE = StreamPiece(data=b"")


class ChatProvider(Protocol):
    name: str

    async def complete(self, request: ChatRequest, route: Route) -> tuple[dict, Usage | None]: ...

    def stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]: ...


# --- helpers for providers that build OpenAI objects themselves ---------------------------


def dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(obj) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


@dataclass
class ChunkBuilder:
    """Builds OpenAI `chat.completion.chunk` dicts for one streamed reply."""

    model: str
    id: str = field(default_factory=lambda: "chatcmpl-" + unique_hex(96))
    created: int = field(default_factory=lambda: int(time.time()))
    system_fingerprint: str | None = None

    def chunk(self, delta: dict | None = None, finish_reason: str | None = None, **extra) -> dict:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        if self.system_fingerprint:
            obj["system_fingerprint"] = self.system_fingerprint
        obj["choices"] = [
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}
        ]
        obj.update(extra)
        return obj

    def usage_chunk(self, usage: Usage) -> dict:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        if self.system_fingerprint:
            obj["system_fingerprint"] = self.system_fingerprint
        obj["choices"] = []
        obj["usage"] = usage.to_openai()
        return obj

    def usage_piece(self, usage: Usage) -> StreamPiece:
        chunk = self.usage_chunk(usage)
        return StreamPiece(data=sse(chunk), usage=usage, usage_only=True, chunk=chunk)


def completion_object(
    *,
    model: str,
    message: dict,
    finish_reason: str | None,
    usage: Usage | None,
    id: str | None = None,
    created: int | None = None,
    system_fingerprint: str | None = None,
) -> dict:
    """An OpenAI `chat.completion` dict with one choice (its message has `refusal`, null unless the
    vendor refused, as OpenAI's own replies do)."""
    message = {**message, "refusal": message.get("refusal")}
    obj = {
        "id": id or "chatcmpl-" + unique_hex(96),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
    }
    if system_fingerprint:
        obj["system_fingerprint"] = system_fingerprint
    if usage is not None:
        obj["usage"] = usage.to_openai()
    return obj


def text_of(content) -> str:
    """The text of an OpenAI message `content` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
