"""H.264 MP4 for the sandbox's videos, which Chrome, Firefox and Safari play (Motion-JPEG MP4 plays
in none of them). Encoded by the ffmpeg binary that the pinned `imageio-ffmpeg` wheel ships
(libx264, baseline profile, yuv420p, moov first); without that package, None."""

import logging
import os
import subprocess
import tempfile

from PIL import Image

log = logging.getLogger("gpuniq.media")
ENCODE_TIMEOUT = 60


def ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def encode_h264_mp4(frames: list[Image.Image], fps: int) -> bytes | None:
    """Frames (all one size, even width and height) → H.264 MP4 bytes, or None when it cannot."""
    exe = ffmpeg_exe()
    if exe is None:
        return None
    width, height = frames[0].size
    raw = b"".join(frame.convert("RGB").tobytes() for frame in frames)
    fd, out = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        cmd = [
            exe,
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-r",
            str(fps),
            "-i",
            "pipe:0",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            out,
        ]
        done = subprocess.run(cmd, input=raw, capture_output=True, timeout=ENCODE_TIMEOUT, check=False)
        if done.returncode != 0:
            log.warning("sandbox H.264 encode failed: %s", done.stderr[-500:].decode(errors="replace"))
            return None
        with open(out, "rb") as fh:
            return fh.read()
    except (OSError, subprocess.TimeoutExpired):
        log.warning("sandbox H.264 encode failed", exc_info=True)
        return None
    finally:
        os.unlink(out)
