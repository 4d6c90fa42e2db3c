"""The sandbox (GPUNIQ_SANDBOX=1, vendor without a key): real media made locally with Pillow.

Images: the requested size (capped at 4096 a side), a gradient whose colours derive from the
prompt, the prompt text and a "SIMULATED" banner drawn on it. Videos: a few frames a second of
the same picture with a moving bar, as an MJPEG MP4 of the requested duration and aspect ratio.
"""

import asyncio
import hashlib
import io
import textwrap

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .base import GeneratedImage, GeneratedVideo, ImageSpec, Route, VideoSpec
from .h264 import encode_h264_mp4
from .sandbox_video import FPS, encode_mjpeg_mp4

MAX_SIDE = 4096
VIDEO_SIZES = {
    "16:9": (640, 360),
    "9:16": (360, 640),
    "1:1": (480, 480),
    "4:3": (640, 480),
    "3:4": (480, 640),
}


def _colors(prompt: str, index: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    d = hashlib.sha256(f"{prompt}|{index}".encode()).digest()
    return (d[0], d[1], d[2]), (d[3], d[4], d[5])


def picture(prompt: str, size: tuple[int, int], index: int = 0, shift: float = 0.0) -> Image.Image:
    """A gradient in the prompt's colours with the prompt written on it."""
    width, height = (max(16, min(MAX_SIDE, v)) for v in size)
    dark, light = _colors(prompt, index)
    gray = Image.linear_gradient("L").rotate(int(shift * 360) % 360).resize((width, height))
    img = ImageOps.colorize(gray, dark, light).convert("RGB")
    draw = ImageDraw.Draw(img)
    font_size = max(10, min(width, height) // 16)
    font = ImageFont.load_default(size=font_size)
    draw.rectangle([0, 0, width, font_size * 1.6], fill=(0, 0, 0))
    draw.text(
        (font_size // 2, font_size // 4), "SIMULATED \u00b7 GPUniq sandbox", fill=(255, 255, 255), font=font
    )
    lines = textwrap.wrap(prompt, width=max(8, int(width / (font_size * 0.6))))[:8]
    draw.multiline_text(
        (font_size // 2, font_size * 2.2),
        "\n".join(lines),
        fill=(255, 255, 255),
        font=font,
        stroke_width=max(1, font_size // 12),
        stroke_fill=(0, 0, 0),
    )
    return img


def image_bytes(prompt: str, size: tuple[int, int], index: int) -> bytes:
    buf = io.BytesIO()
    picture(prompt, size, index).save(buf, format="PNG")
    return buf.getvalue()


def video_bytes(spec: VideoSpec) -> bytes:
    size = VIDEO_SIZES.get(spec.aspect_ratio or "16:9", VIDEO_SIZES["16:9"])
    count = max(1, spec.duration * FPS)
    base = picture(spec.prompt, size)
    frames = []
    for i in range(count):
        frame = base.copy()
        x = int((size[0] - 20) * i / max(1, count - 1))
        ImageDraw.Draw(frame).rectangle([x, size[1] - 24, x + 20, size[1] - 4], fill=(255, 255, 255))
        frames.append(frame)
    return encode_h264_mp4(frames, FPS) or encode_mjpeg_mp4(frames)  # browsers play H.264, not MJPEG


class SandboxImages:
    async def generate(self, spec: ImageSpec, route: Route) -> list[GeneratedImage]:
        size = spec.size or (1024, 1024)
        return [
            GeneratedImage(await asyncio.to_thread(image_bytes, spec.prompt, size, i), "image/png")
            for i in range(spec.n)
        ]


class SandboxVideo:
    async def generate(self, spec: VideoSpec, route: Route) -> GeneratedVideo:
        return GeneratedVideo(mime_type="video/mp4", data=await asyncio.to_thread(video_bytes, spec))
