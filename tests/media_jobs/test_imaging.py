"""Tests for media_jobs.imaging (no Django)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from media_jobs.imaging import normalise_output_format, reencode, sniff_image_mime


def rgba_png(size=(8, 8)) -> bytes:
    """Left half opaque red, right half fully transparent (black under alpha 0)."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    for x in range(size[0] // 2):
        for y in range(size[1]):
            img.putpixel((x, y), (255, 0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def encoded(fmt: str, mode: str = "RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (8, 8), (10, 200, 30) if mode == "RGB" else (10, 200, 30, 128)).save(
        buf, format=fmt, **kw
    )
    return buf.getvalue()


def open_img(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


# --------------------------------------------------------------- sniffing --
@pytest.mark.parametrize(
    "fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")]
)
def test_sniff_image_mime(fmt, mime):
    assert sniff_image_mime(encoded(fmt)) == mime


@pytest.mark.parametrize("data", [b"", b"hello world", b"RIFF\0\0\0\0WAVEfmt ", b"\x89PN"])
def test_sniff_unknown(data):
    assert sniff_image_mime(data) is None


# ---------------------------------------------------------- normalisation --
@pytest.mark.parametrize(
    "value, expected",
    [
        ("png", "png"),
        ("PNG", "png"),
        ("jpeg", "jpeg"),
        ("jpg", "jpeg"),
        (" JPG ", "jpeg"),
        ("webp", "webp"),
        (None, "png"),
    ],
)
def test_normalise_output_format(value, expected):
    assert normalise_output_format(value) == expected


@pytest.mark.parametrize("value", ["gif", "bmp", "", "tiff", 3, b"png", ["png"]])
def test_normalise_output_format_rejects(value):
    with pytest.raises(ValueError):
        normalise_output_format(value)


def test_reencode_unknown_format_raises():
    with pytest.raises(ValueError):
        reencode(rgba_png(), "bmp")


# ---------------------------------------------------------------- reencode --
@pytest.mark.parametrize("fmt", [None, "png", "PNG"])
def test_png_pass_through_identical(fmt):
    src = rgba_png()
    out, mime = reencode(src, fmt)
    assert out == src and mime == "image/png"


@pytest.mark.parametrize("src_fmt, mime", [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_png_request_keeps_non_png_source_and_reports_real_type(src_fmt, mime):
    src = encoded(src_fmt)
    assert reencode(src, "png") == (src, mime)
    assert reencode(src, None) == (src, mime)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "JPEG"])
def test_jpeg_flattens_alpha_onto_white(fmt):
    out, mime = reencode(rgba_png(), fmt)
    assert mime == "image/jpeg" and sniff_image_mime(out) == "image/jpeg"
    img = open_img(out)
    assert img.format == "JPEG" and img.mode == "RGB"
    r, g, b = img.getpixel((7, 4))  # was alpha 0 (black underneath)
    assert min(r, g, b) >= 245
    r, g, b = img.getpixel((0, 4))  # opaque red stays red
    assert r >= 200 and g <= 60 and b <= 60


def test_jpeg_from_palette_with_transparency_is_white():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=0)
    out, mime = reencode(buf.getvalue(), "jpeg")
    assert mime == "image/jpeg"
    assert min(open_img(out).getpixel((3, 3))) >= 245


def test_webp_keeps_alpha():
    out, mime = reencode(rgba_png(), "webp")
    assert mime == "image/webp" and sniff_image_mime(out) == "image/webp"
    img = open_img(out)
    assert img.format == "WEBP" and img.mode == "RGBA"
    assert img.getpixel((7, 4))[3] == 0
    assert img.getpixel((0, 4))[3] == 255


def test_webp_from_opaque_png_is_rgb():
    out, mime = reencode(encoded("PNG"), "webp")
    assert mime == "image/webp" and open_img(out).mode == "RGB"


def test_jpeg_from_webp_source():
    out, mime = reencode(encoded("WEBP", mode="RGBA"), "jpeg")
    assert mime == "image/jpeg" and open_img(out).format == "JPEG"


def test_same_format_is_pass_through():
    jpeg = encoded("JPEG")
    assert reencode(jpeg, "jpg") == (jpeg, "image/jpeg")
    webp = encoded("WEBP")
    assert reencode(webp, "webp") == (webp, "image/webp")


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_corrupt_png_returned_unchanged(fmt):
    corrupt = rgba_png((64, 64))[:60]  # PNG magic, truncated body
    assert reencode(corrupt, fmt) == (corrupt, "image/png")


@pytest.mark.parametrize("fmt", [None, "jpeg", "webp"])
def test_garbage_returned_unchanged_never_raises(fmt):
    garbage = b"\x00\x01not an image at all"
    out, mime = reencode(garbage, fmt)
    assert out == garbage and mime == "application/octet-stream"


def test_quality_is_high():
    # Quality 92 on a smooth gradient stays close to the source.
    img = Image.new("RGB", (64, 64))
    img.putdata([(x * 4, y * 4, 128) for y in range(64) for x in range(64)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    out, _ = reencode(buf.getvalue(), "jpeg")
    r, g, b = open_img(out).getpixel((32, 32))
    assert abs(r - 128) <= 6 and abs(g - 128) <= 6 and abs(b - 128) <= 6
