"""User-supplied media (input_images, image_url, video_url), fetched only through safe_fetch:
https or data: URIs (bare base64 for images), public addresses only (checked after DNS and on
every redirect), capped in size and time, and verified to really be an image or a video.
Any refusal is a 400 with a catalog code, raised before money is held.
"""

import asyncio

from django.conf import settings

from gpuniq_site.errors import ApiError

from . import safe_fetch
from .providers.base import InputMedia

# safe_fetch refusal codes that are about the content rather than the address
_CONTENT_CODES = {"url_bad_content", "invalid_data_uri", "invalid_base64", "url_too_large"}


def _to_api_error(refused: safe_fetch.FetchRefused, kind: str) -> ApiError:
    meta = {"field": refused.field, "reason_code": refused.code}
    if refused.code in _CONTENT_CODES:
        return ApiError("invalid_media", field=refused.field, kind=kind, reason=refused.message, meta=meta)
    return ApiError("invalid_url", field=refused.field, reason=refused.message, meta=meta)


async def fetch(value, *, field: str, kind: str) -> InputMedia:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(
            "invalid_parameter",
            field=field,
            reason="must be an https URL or a data: URI",
            meta={"field": field},
        )
    limit = (
        settings.GPUNIQ_MEDIA_IMAGE_INPUT_MAX_BYTES
        if kind == "image"
        else settings.GPUNIQ_MEDIA_VIDEO_INPUT_MAX_BYTES
    )
    try:
        media = await safe_fetch.fetch_media(
            value, field=field, kind=kind, max_bytes=limit, timeout=settings.GPUNIQ_MEDIA_FETCH_TIMEOUT
        )
    except safe_fetch.FetchRefused as refused:
        raise _to_api_error(refused, kind) from None
    source = value.strip() if media.source == "https" else ""
    return InputMedia(media.data, media.mime_type, source)


async def fetch_images(values: list, field: str = "input_images") -> list[InputMedia]:
    return list(
        await asyncio.gather(*(fetch(v, field=f"{field}[{i}]", kind="image") for i, v in enumerate(values)))
    )
