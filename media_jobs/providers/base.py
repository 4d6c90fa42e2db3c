"""What the media adapters speak: requests in our terms, results as bytes or vendor URLs.

An image adapter implements `async generate(spec, route) -> list[GeneratedImage]` (fewer images
than asked is a partial delivery, none is a failure the chain treats like an error); a video
adapter implements `async generate(spec, route) -> GeneratedVideo`. Failures are
llm.providers.base.UpstreamError; media adds the kinds "content_policy" and "no_output".
"""

import base64
import re
import time
from dataclasses import dataclass, field

from llm.providers.base import Route, UpstreamError

__all__ = [
    "Route",
    "UpstreamError",
    "InputMedia",
    "ImageSpec",
    "GeneratedImage",
    "VideoSpec",
    "GeneratedVideo",
    "Deadline",
    "no_output",
    "redact",
]


@dataclass(frozen=True)
class InputMedia:
    """A user-supplied image or video, already fetched and verified (safe_fetch)."""

    data: bytes
    mime_type: str
    source_url: str = ""  # the user's https URL, when it was one (large videos are passed by URL)

    def data_uri(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass
class Deadline:
    """Monotonic end of the budget; adapters poll and size their timeouts against it."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass
class ImageSpec:
    slug: str
    prompt: str
    n: int = 1
    size: tuple[int, int] | None = None  # requested output size hint
    quality: str | None = None
    inputs: list[InputMedia] = field(default_factory=list)
    request_id: str = ""
    deadline: Deadline = field(default_factory=lambda: Deadline.after(300))

    @property
    def size_text(self) -> str | None:
        return f"{self.size[0]}x{self.size[1]}" if self.size else None


@dataclass
class GeneratedImage:
    data: bytes
    mime_type: str
    revised_prompt: str | None = None


@dataclass
class VideoSpec:
    slug: str
    prompt: str
    duration: int
    aspect_ratio: str | None
    resolution: str | None
    audio: bool
    mode: str | None
    task: str  # t2v | i2v | v2v
    image: InputMedia | None = None
    video: InputMedia | None = None
    request_id: str = ""
    deadline: Deadline = field(default_factory=lambda: Deadline.after(300))


@dataclass
class GeneratedVideo:
    """Either the bytes, or a vendor URL (operator-trusted) for the caller to download."""

    mime_type: str = "video/mp4"
    data: bytes | None = None
    url: str | None = None
    headers: dict = field(default_factory=dict)  # for downloads that need the vendor's auth


def no_output(what: str = "image") -> UpstreamError:
    return UpstreamError("no_output", f"the provider returned no {what}")


def redact(message: str, route: Route, slug: str) -> str:
    """Vendor messages may name the upstream model; users only ever see our slug."""
    if route.upstream_model:
        message = message.replace(route.upstream_model, slug)
    return re.sub(r"\b(fal|openrouter)\b", "provider", message, flags=re.I)
