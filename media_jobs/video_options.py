"""Resolve a video request against the model's catalog options: duration, aspect ratio,
resolution, audio, mode and task (t2v | i2v | v2v). Anything the model does not support is a
400 naming the field; the price follows from the resolved configuration."""

from dataclasses import asdict, dataclass
from decimal import Decimal

from billing.pricing import VideoConfig, video_cost
from llm.catalog import ModelInfo

from .validation import digits, invalid, prompt_of, unsupported

DEFAULT_ASPECT = "16:9"


@dataclass(frozen=True)
class VideoRequest:
    slug: str
    prompt: str
    duration: int
    aspect_ratio: str | None
    resolution: str | None
    audio: bool
    mode: str | None
    task: str
    image_url: str | None
    video_url: str | None

    def config(self) -> dict:
        keys = ("resolution", "audio", "duration", "task", "mode", "aspect_ratio")
        return {k: v for k, v in asdict(self).items() if k in keys}

    def cost(self, model: ModelInfo) -> Decimal:
        config = VideoConfig(
            duration=self.duration, resolution=self.resolution, audio=self.audio, mode=self.mode
        )
        return video_cost(model.per_video or Decimal(0), model.video_options, config)


def _duration(body: dict, slug: str, options: dict) -> int:
    value = body.get("duration")
    if value is None:
        return int(options.get("default_duration") or 5)
    if isinstance(value, str) and (seconds := digits(value.strip().rstrip("s"))) is not None:
        value = seconds
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("duration", "must be a whole number of seconds")
    if "durations" in options and value not in options["durations"]:
        allowed = ", ".join(str(d) for d in options["durations"])
        raise unsupported("duration", slug, f"must be one of {allowed} seconds")
    low, high = options.get("duration_range") or (value, value)
    if not low <= value <= high:
        raise unsupported("duration", slug, f"must be between {low} and {high} seconds")
    return value


def _choice(body: dict, name: str, slug: str, allowed: list | None, default, normalise=str.lower):
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    if not allowed:
        raise unsupported(name, slug, "this model has no such option")
    value = normalise(value.strip())
    if value not in allowed:
        raise unsupported(name, slug, f"must be one of {', '.join(allowed)}")
    return value


def _audio(body: dict, slug: str, options: dict) -> bool:
    value = body.get("audio")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid("audio", "must be true or false")
    if value and not options.get("audio"):
        raise unsupported("audio", slug, "this model cannot add audio")
    return value


def _task(body: dict, slug: str, tasks: list) -> tuple[str, str | None, str | None]:
    image_url, video_url = body.get("image_url") or None, body.get("video_url") or None
    for name, value in (("image_url", image_url), ("video_url", video_url)):
        if value is not None and not isinstance(value, str):
            raise invalid(name, "must be an https URL or a data: URI")
    if video_url and "v2v" not in tasks:
        raise unsupported("video_url", slug, "this model does not take a driving video")
    if "v2v" in tasks:
        if not video_url:
            raise invalid("video_url", "is required by this motion-control model")
        if not image_url:
            raise invalid("image_url", "is required by this model (the conditioning frame)")
        return "v2v", image_url, video_url
    if image_url and "i2v" not in tasks:
        raise unsupported("image_url", slug, "this model does not animate images")
    if not image_url and "t2v" not in tasks:
        raise invalid("image_url", "is required by this image-to-video model")
    return ("i2v" if image_url else "t2v"), image_url, None


def resolve(model: ModelInfo, body: dict) -> VideoRequest:
    options, slug = model.video_options, model.slug
    prompt = prompt_of(body)
    duration = _duration(body, slug, options)
    aspects = options.get("aspect_ratios")
    aspect_default = (DEFAULT_ASPECT if DEFAULT_ASPECT in aspects else aspects[0]) if aspects else None
    aspect = _choice(body, "aspect_ratio", slug, aspects, aspect_default, normalise=lambda v: v)
    resolution = _choice(
        body, "resolution", slug, options.get("resolutions"), options.get("default_resolution")
    )
    mode = _choice(body, "mode", slug, options.get("modes"), options.get("default_mode"))
    audio = _audio(body, slug, options)
    task, image_url, video_url = _task(body, slug, list(options.get("tasks") or ["t2v"]))
    return VideoRequest(slug, prompt, duration, aspect, resolution, audio, mode, task, image_url, video_url)
