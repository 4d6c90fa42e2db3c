"""A real, short video file without an encoder: Motion-JPEG frames in an MP4 container.

The sample entry is 'mp4v' with an esds objectTypeIndication of 0x6C (ISO/IEC 10918-1 JPEG),
every frame a sync sample, moov before mdat. Players built on FFmpeg (VLC, mpv, ffplay) and
QuickTime play it; it exists so the sandbox returns something watchable and clearly simulated.
"""

import io
import struct

from PIL import Image

FPS = 4
TIMESCALE = 1000
MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, body: bytes) -> bytes:
    return bytes([tag, len(body)]) + body  # bodies here are < 128 bytes


def _esds() -> bytes:
    decoder = _descriptor(0x04, bytes([0x6C, 0x11]) + b"\x00\x00\x00" + struct.pack(">II", 0, 0))
    es = _descriptor(0x03, struct.pack(">HB", 1, 0) + decoder + _descriptor(0x06, b"\x02"))
    return full_box(b"esds", 0, 0, es)


def _stsd(width: int, height: int) -> bytes:
    entry = box(
        b"mp4v",
        b"\x00" * 6,
        struct.pack(">H", 1),
        b"\x00" * 16,
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000),
        b"\x00" * 4,
        struct.pack(">H", 1),
        b"\x00" * 32,
        struct.pack(">Hh", 0x18, -1),
        _esds(),
    )
    return full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry)


def _stbl(sizes: list[int], width: int, height: int, offset: int) -> bytes:
    delta = TIMESCALE // FPS
    return box(
        b"stbl",
        _stsd(width, height),
        full_box(b"stts", 0, 0, struct.pack(">III", 1, len(sizes), delta)),
        full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(sizes)), *(struct.pack(">I", s) for s in sizes)),
        full_box(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )


def _moov(sizes: list[int], width: int, height: int, offset: int) -> bytes:
    duration = len(sizes) * TIMESCALE // FPS
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, TIMESCALE, duration),
        struct.pack(">IH", 0x10000, 0x100),
        b"\x00" * 10,
        MATRIX,
        b"\x00" * 24,
        struct.pack(">I", 2),
    )
    tkhd = full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration),
        b"\x00" * 8,
        struct.pack(">hhhH", 0, 0, 0, 0),
        MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = full_box(
        b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, duration), struct.pack(">HH", 0x55C4, 0)
    )
    hdlr = full_box(b"hdlr", 0, 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"GPUniq sandbox video\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    minf = box(b"minf", full_box(b"vmhd", 0, 1, b"\x00" * 8), dinf, _stbl(sizes, width, height, offset))
    return box(b"moov", mvhd, box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf)))


def encode_mjpeg_mp4(frames: list[Image.Image], quality: int = 80) -> bytes:
    """Frames (all one size) → MP4 bytes at FPS frames a second."""
    jpegs = []
    for frame in frames:
        buf = io.BytesIO()
        frame.convert("RGB").save(buf, format="JPEG", quality=quality)
        jpegs.append(buf.getvalue())
    width, height = frames[0].size
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2mp41")
    sizes = [len(j) for j in jpegs]
    moov_len = len(_moov(sizes, width, height, 0))
    offset = len(ftyp) + moov_len + 8  # first frame starts right after the mdat header
    return ftyp + _moov(sizes, width, height, offset) + box(b"mdat", *jpegs)
