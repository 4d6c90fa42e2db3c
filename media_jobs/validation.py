"""Request validation for image and video generation. Every refusal names its field and
happens before any money is held or any URL is fetched."""

import re
from dataclasses import dataclass, field

from gpuniq_site.errors import ApiError
from llm.catalog import ModelInfo

from .imaging import normalise_output_format

MAX_PROMPT = 4000
MAX_IMAGES = 4
MAX_INPUT_IMAGES = 8
MAX_DIGITS = 9  # counts and seconds; a longer number is out of every range anyway
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


def digits(text: str) -> int | None:
    """The number a string of ASCII digits spells, else None (the caller's own refusal follows).
    str.isdigit() alone passes '²', which int() refuses, and int() refuses past 4,300 digits."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        return int(text)
    return None


def invalid(name: str, reason: str) -> ApiError:
    return ApiError("invalid_parameter", field=name, reason=reason, meta={"field": name})


def unsupported(name: str, model: str, reason: str) -> ApiError:
    return ApiError(
        "unsupported_parameter", field=name, model=model, reason=reason, meta={"field": name, "model": model}
    )


def slug_of(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise ApiError("missing_parameter", field="model", meta={"field": "model"})
    if not isinstance(model, str) or not model or len(model) > 100:
        raise invalid("model", "must be a model slug")
    return model


def prompt_of(body: dict) -> str:
    prompt = body.get("prompt")
    if prompt is None or prompt == "":
        raise ApiError("missing_parameter", field="prompt", meta={"field": "prompt"})
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt", "must be a non-empty string")
    if len(prompt) > MAX_PROMPT:
        raise invalid("prompt", f"at most {MAX_PROMPT} characters")
    return prompt


def size_of(value) -> tuple[int, int] | None:
    if value in (None, "", "auto"):
        return None
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise invalid("size", "must look like 1024x1024 (or 'auto')")
    width, height = int(match.group(1)), int(match.group(2))
    if not (64 <= width <= 8192 and 64 <= height <= 8192):
        raise invalid("size", "each side must be between 64 and 8192 pixels")
    return width, height


def _int(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, str) and (number := digits(value.strip())) is not None:
        value = number
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be an integer")
    return value


@dataclass
class ImageRequest:
    slug: str
    prompt: str
    n: int
    size: tuple[int, int] | None
    quality: str | None
    response_format: str
    output_format: str
    input_images: list = field(default_factory=list)


def parse_image_request(body: dict) -> ImageRequest:
    slug, prompt = slug_of(body), prompt_of(body)
    n = _int(body, "n", 1)
    if not 1 <= n <= MAX_IMAGES:
        raise invalid("n", f"must be between 1 and {MAX_IMAGES}")
    if body.get("stream"):
        raise unsupported("stream", slug, "image generation is not streamed")
    response_format = body.get("response_format") or "b64_json"
    if response_format not in ("b64_json", "url"):
        raise invalid("response_format", "must be 'b64_json' or 'url'")
    try:
        output_format = normalise_output_format(body.get("output_format"))
    except ValueError:
        raise invalid("output_format", "must be png, jpeg (jpg) or webp") from None
    quality = body.get("quality")
    inputs = body.get("input_images") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or len(inputs) > MAX_INPUT_IMAGES:
        raise invalid("input_images", f"must be a list of at most {MAX_INPUT_IMAGES} images")
    return ImageRequest(
        slug,
        prompt,
        n,
        size_of(body.get("size")),
        quality.strip().lower() if isinstance(quality, str) and quality.strip() else None,
        response_format,
        output_format,
        inputs,
    )


def check_image_model(model: ModelInfo, req: ImageRequest) -> None:
    if req.input_images and "edit" not in model.capabilities:
        raise unsupported("input_images", model.slug, "this model does not take reference images")


NANO_BANANA = re.compile(r"^nano-banana(-|$)")


def check_image_job(model: ModelInfo, req: ImageRequest) -> None:
    if not NANO_BANANA.match(model.slug):
        raise invalid(
            "model",
            "the image jobs API accepts only Nano Banana models "
            "(nano-banana, nano-banana-2, nano-banana-pro, nano-banana-pro-4k)",
        )
    if req.n != 1:
        raise invalid("n", "must be 1 on the jobs API; start several jobs for a batch")
    check_image_model(model, req)
