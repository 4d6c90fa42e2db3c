"""Output re-encoding for generated images (png pass-through, jpeg, webp)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

OUTPUT_FORMATS = ("png", "jpeg", "webp")
QUALITY = 92
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_FALLBACK_MIME = "application/octet-stream"
# Decoders we are willing to run on vendor output (no EPS/ghostscript etc.).
_DECODERS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


def sniff_image_mime(data: bytes) -> str | None:
    """Identify PNG / JPEG / WebP / GIF by magic bytes; None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def dimensions(data: bytes) -> str | None:
    """ "WIDTHxHEIGHT" of an encoded image (header only), or None when it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return f"{img.width}x{img.height}"
    except Exception:  # noqa: BLE001 - any unreadable image: no size to report
        return None


def normalise_output_format(value) -> str:
    """Map a user value to "png" | "jpeg" | "webp" ("jpg" accepted, None -> "png")."""
    if value is None:
        return "png"
    if not isinstance(value, str):
        raise ValueError(f"output_format must be a string, got {type(value).__name__}")
    fmt = value.strip().lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unsupported output_format {value!r}; use png, jpeg or webp")
    return fmt


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def _convert(img: Image.Image, fmt: str) -> bytes:
    icc = img.info.get("icc_profile")
    if fmt == "jpeg":
        if _has_alpha(img):
            rgba = img.convert("RGBA")
            out = Image.new("RGB", rgba.size, (255, 255, 255))
            out.paste(rgba, mask=rgba.getchannel("A"))
        else:
            out = img.convert("RGB")
        save_args: dict[str, Any] = {"format": "JPEG", "quality": QUALITY, "optimize": True}
    else:  # webp
        out = img.convert("RGBA" if _has_alpha(img) else "RGB")
        save_args = {"format": "WEBP", "quality": QUALITY}
    if icc:
        save_args["icc_profile"] = icc
    buf = io.BytesIO()
    out.save(buf, **save_args)
    return buf.getvalue()


def reencode(png_or_any_bytes: bytes, output_format: str | None) -> tuple[bytes, str]:
    """Return (bytes, mime_type) in the requested format.

    png/None and "already in the requested format" are pass-throughs reporting the
    sniffed type. Conversion failures never raise: the source is returned as-is.
    Unknown format strings raise ValueError.
    """
    fmt = normalise_output_format(output_format)
    data = bytes(png_or_any_bytes)
    source_mime = sniff_image_mime(data)
    fallback = (data, source_mime or _FALLBACK_MIME)
    if fmt == "png" or source_mime == _MIME[fmt]:
        return fallback
    try:
        with Image.open(io.BytesIO(data), formats=_DECODERS) as img:
            img.load()
            return _convert(img, fmt), _MIME[fmt]
    except Exception:  # noqa: BLE001 - corrupt/unsupported input: keep the source
        return fallback
