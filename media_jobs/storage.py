"""Files under settings.MEDIA_ROOT: generated media (kept for history) and job inputs (kept until
the job ends), plus signed, expiring links to serve them at GET /v1/llm/media/<token>.

Links are django.core.signing.TimestampSigner tokens over the relative path: nothing else
authorises a download, and a token older than GPUNIQ_MEDIA_URL_TTL_SECONDS is refused.
"""

import mimetypes
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.utils import timezone

SALT = "gpuniq.media.link"
_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}
_MIME = {ext: mime for mime, ext in _EXT.items()}


class BadLink(Exception):
    """The token is forged, expired or points outside the media root."""


def root() -> Path:
    return Path(settings.MEDIA_ROOT)


def extension(mime_type: str) -> str:
    return _EXT.get(mime_type, "bin")


def mime_of(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    return _MIME.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def new_path(area: str, kind: str, mime_type: str) -> str:
    """A fresh relative path: <area>/<kind>/<yyyy>/<mm>/<dd>/<uuid>.<ext>."""
    day = timezone.now().strftime("%Y/%m/%d")
    return f"{area}/{kind}/{day}/{uuid.uuid4().hex}.{extension(mime_type)}"


def absolute(relative: str) -> Path:
    base = root().resolve()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise BadLink("path outside the media root")
    return path


def save(area: str, kind: str, data: bytes, mime_type: str) -> str:
    relative = new_path(area, kind, mime_type)
    path = absolute(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return relative


def open_for_write(area: str, kind: str, mime_type: str) -> tuple[str, Path]:
    """A relative path and its absolute location (parent created) for streamed writes."""
    relative = new_path(area, kind, mime_type)
    path = absolute(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    return relative, path


def read(relative: str) -> bytes:
    return absolute(relative).read_bytes()


def delete(relative: str) -> None:
    try:
        absolute(relative).unlink(missing_ok=True)
    except (BadLink, OSError):
        pass


def sign(relative: str) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"p": relative})


def signed_url(relative: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/v1/llm/media/{sign(relative)}"


def download_name(prompt: str, model: str, path: str) -> str:
    """A file name people recognise: the prompt's first words and the model, with the file's extension."""
    words = re.sub(r"[^a-z0-9]+", "-", (prompt or "").lower()).strip("-")[:60].rstrip("-") or "generation"
    model_part = re.sub(r"[^a-z0-9.]+", "-", (model or "").lower()).strip("-")
    return f"{words}-{model_part}{Path(path).suffix}" if model_part else f"{words}{Path(path).suffix}"


def safe_download_name(name: str, path: Path) -> str:
    """A client-supplied download name reduced to safe characters, always with the file's real extension."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name or "").stem).strip("-.")[:120] or "generation"
    return f"{stem}{path.suffix}"


def unsign(token: str) -> Path:
    """The file a token names, if the token is genuine, unexpired and the file exists."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(
            token, max_age=settings.GPUNIQ_MEDIA_URL_TTL_SECONDS
        )
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadLink(str(exc)) from None
    relative = data.get("p") if isinstance(data, dict) else None
    if not isinstance(relative, str):
        raise BadLink("malformed token")
    path = absolute(relative)
    if not path.is_file():
        raise BadLink("no such file")
    return path
