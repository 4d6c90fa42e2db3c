"""What a flat per-image price covers, and the request the vendor gets (issue #12 §1: the hold must
bound what the vendor can bill).

Vendors bill images by the configuration asked for, while the catalog sells a flat price per image:
GPT Image by `quality` and size (and sends `quality: auto`, "the best quality for the model", when
none is named), fal's FLUX by output megapixel, Gemini 3 image models by resolution tier. Each image
model's `covers` table in llm/catalog.toml says what its price pays for, from the vendor's published
table (cited next to each entry there):

  qualities       the vendor quality tiers the price covers (empty: the model takes no quality hint);
  quality         the tier sent when the client names none, says `auto` or names an unknown value;
  max_megapixels  the largest output, in fal's megapixels of 1024 x 1024 pixels;
  max_tier        the largest resolution tier (1K / 2K / 4K by the longer side, media_jobs.providers.sizes).

`bound` runs on every image surface (sync images on both APIs, image jobs, chat image turns, the
studio) before any hold or vendor call: the vendor always gets an explicit configuration the price
covers, and a hint the price does not cover is a 400 unsupported_parameter saying what it covers.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from billing.money import format_usd
from gpuniq_site.errors import ApiError
from llm.catalog import ModelInfo

from . import routes
from .providers.sizes import tier
from .validation import ImageRequest, size_of, unsupported

MEGAPIXEL = 1024 * 1024  # fal rounds "per megapixel" prices up to this unit
TIERS = ("1K", "2K", "4K")
TIER_SIDE = {"1K": 1280, "2K": 2560}  # the longest side sizes.tier still puts in the tier
# The quality names clients send (OpenAI's GPT Image tiers and DALL·E 3's standard / hd, plus the
# aliases other gateways take) and the vendor tier each one asks for. Anything else is "unknown".
QUALITY_TIERS = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "standard": "medium",
    "hd": "high",
    "xhigh": "high",
    "max": "high",
}


@dataclass(frozen=True)
class Covers:
    qualities: tuple[str, ...] = ()
    quality: str | None = None
    max_megapixels: Decimal | None = None
    max_tier: str | None = None


def covers_of(slug: str) -> Covers:
    table = routes.price_covers(slug)
    mp = table.get("max_megapixels")
    return Covers(
        qualities=tuple(table.get("qualities") or ()),
        quality=table.get("quality"),
        max_megapixels=Decimal(str(mp)) if mp is not None else None,
        max_tier=table.get("max_tier"),
    )


def bound(model: ModelInfo, req: ImageRequest) -> ImageRequest:
    """`req` with the quality and size the vendor will get; a 400 when a hint exceeds the price."""
    covers = covers_of(model.slug)
    size = req.size or size_of(routes.default_size(req.slug))
    _check_size(model, covers, size)
    return replace(req, quality=_quality(model, covers, req.quality), size=size)


def refusal(model: ModelInfo, size_text: str | None) -> str:
    """Why the price of `model` does not cover this size hint ("" when it does, or for "auto")."""
    try:
        _check_size(model, covers_of(model.slug), size_of(size_text))
    except ApiError as error:
        return error.message
    return ""


def _price(model: ModelInfo) -> str:
    return f"{format_usd(model.per_image)}/image"


def _quality(model: ModelInfo, covers: Covers, hint: str | None) -> str | None:
    if not covers.qualities:
        return None  # no vendor of this model bills by quality: nothing is forwarded
    wanted = QUALITY_TIERS.get(hint or "")
    if wanted is None:  # none, auto, or a value the model does not know: the covered default
        return covers.quality
    if wanted not in covers.qualities:
        raise unsupported(
            "quality",
            model.slug,
            f"the price of {model.slug} ({_price(model)}) covers quality {' / '.join(covers.qualities)}; "
            f"'{hint}' is billed higher by the vendor",
        )
    return wanted


def _check_size(model: ModelInfo, covers: Covers, size: tuple[int, int] | None) -> None:
    if size is None:
        return
    width, height = size
    if covers.max_megapixels is not None and width * height > covers.max_megapixels * MEGAPIXEL:
        raise unsupported(
            "size",
            model.slug,
            f"the price of {model.slug} ({_price(model)}) covers outputs up to "
            f"{covers.max_megapixels} megapixels (1 MP = 1024x1024); {width}x{height} is billed higher "
            "by the vendor",
        )
    if covers.max_tier is not None and TIERS.index(tier(size)) > TIERS.index(covers.max_tier):
        side = TIER_SIDE[covers.max_tier]
        raise unsupported(
            "size",
            model.slug,
            f"the price of {model.slug} ({_price(model)}) covers the {covers.max_tier} resolution tier "
            f"(longer side up to {side} px); {width}x{height} is billed at a higher tier by the vendor",
        )
