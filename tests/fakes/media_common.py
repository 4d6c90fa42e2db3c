"""Shared plumbing for the fake image/video vendor servers (loopback only).

Self-contained on purpose (raw ASGI + uvicorn in a background thread), so the
media fakes do not depend on ``tests/fakes/common.py``'s API.

Pieces:
  * ``FakeMediaServer``  - base class: uvicorn thread runner, request log
    (``.requests``), scripted faults (``.script(fault, times=1, on=None)``),
    in-band faults (``[[fault:NAME]]`` in the prompt), media file store served at
    ``GET /files/<name>``.
  * ``make_image`` / ``make_mp4`` - real PNG/JPEG/WebP bytes via Pillow, and a
    small MP4 that starts with a valid ``ftyp`` box (ftyp, moov/mvhd/tkhd, mdat).
  * ``parse_multipart`` - dependency-free multipart/form-data parser.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import socket
import struct
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from PIL import Image, ImageDraw

FAULTS = frozenset(
    {"500", "429", "400", "content_policy", "no_image", "partial", "slow", "job_failed", "never_finishes"}
)
_FAULT_RE = re.compile(r"\[\[fault:([A-Za-z0-9_]+)\]\]")


def prompt_faults(prompt: Any) -> set[str]:
    """Fault names embedded in a prompt as ``[[fault:NAME]]``."""
    return set(_FAULT_RE.findall(prompt)) if isinstance(prompt, str) else set()


# ----------------------------------------------------------------- media bytes
def prompt_color(prompt: str, index: int = 0) -> tuple[int, int, int]:
    d = hashlib.sha256(f"{prompt}|{index}".encode()).digest()
    return d[0], d[1], d[2]


def capped_size(width: int, height: int, max_side: int = 1024) -> tuple[int, int]:
    """Scale (width, height) down so neither side exceeds max_side (keeps aspect)."""
    width, height = max(1, int(width)), max(1, int(height))
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def make_image(
    width: int, height: int, prompt: str = "", index: int = 0, fmt: str = "png", max_side: int = 1024
) -> bytes:
    """A real image whose colour is derived deterministically from the prompt."""
    w, h = capped_size(width, height, max_side)
    color = prompt_color(prompt, index)
    img = Image.new("RGB", (w, h), color)
    inv = tuple(255 - c for c in color)
    ImageDraw.Draw(img).rectangle([w // 4, h // 4, (3 * w) // 4, (3 * h) // 4], fill=inv)
    buf = io.BytesIO()
    pil_fmt = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}.get(fmt.lower(), "PNG")
    img.save(buf, format=pil_fmt)
    return buf.getvalue()


IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def make_mp4(seconds: float = 4.0, width: int = 1280, height: int = 720, seed: str = "") -> bytes:
    """Small MP4-looking file: ftyp + moov(mvhd, trak/tkhd) + mdat (not playable)."""
    duration = int(float(seconds) * 1000)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, duration)
        + struct.pack(">IH10x", 0x10000, 0x100)
        + matrix
        + b"\x00" * 24
        + struct.pack(">I", 2),
    )
    tkhd = _box(
        b"tkhd",
        struct.pack(">B3sIIIII", 0, b"\x00\x00\x03", 0, 0, 1, 0, duration)
        + b"\x00" * 8
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + matrix
        + struct.pack(">II", int(width) << 16, int(height) << 16),
    )
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd))
    digest = hashlib.sha256(f"{seed}|{seconds}|{width}x{height}".encode()).digest()
    mdat = _box(b"mdat", digest * 64)
    return ftyp + moov + mdat


def image_info(data: bytes) -> dict[str, Any]:
    """Best-effort description of an uploaded image (for the request log)."""
    info: dict[str, Any] = {"bytes": len(data)}
    try:
        with Image.open(io.BytesIO(data)) as im:
            info.update(format=im.format, width=im.width, height=im.height)
    except Exception:
        info["format"] = None
    return info


# ------------------------------------------------------------------ multipart
@dataclass
class UploadedFile:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class MultipartForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        vals = self.fields.get(name)
        return vals[-1] if vals else default

    def files_named(self, *names: str) -> list[UploadedFile]:
        return [f for f in self.files if f.name in names]

    def summary(self) -> dict[str, Any]:
        return {
            "fields": {k: (v[0] if len(v) == 1 else v) for k, v in self.fields.items()},
            "files": [
                {"name": f.name, "filename": f.filename, "content_type": f.content_type, **image_info(f.data)}
                for f in self.files
            ],
        }


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', value)]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1].replace('\\"', '"')
            params[k.strip().lower()] = v
    return parts[0].lower(), params


def parse_multipart(body: bytes, content_type: str) -> MultipartForm:
    _, params = _header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise ValueError("multipart body without boundary")
    form = MultipartForm()
    delim = b"--" + boundary.encode("latin-1")
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, data = chunk.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        _, disp = _header_params(headers.get("content-disposition", ""))
        name = disp.get("name", "")
        if "filename" in disp or "filename*" in disp:
            form.files.append(UploadedFile(name, disp.get("filename"), headers.get("content-type"), data))
        else:
            form.fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form


# --------------------------------------------------------------- HTTP plumbing
@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    body: Any = None  # parsed JSON, MultipartForm.summary(), or None
    form: MultipartForm | None = None
    kind: str = ""  # endpoint kind, e.g. "submit", "status", "file"
    faults: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    status: int | None = None  # response status, filled in after handling
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return self.body if self.form is None else None


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(
        status, json.dumps(obj).encode(), {"content-type": "application/json", **(headers or {})}
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class StoredFile:
    content_type: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)


class FakeMediaServer:
    """Base fake: subclasses implement ``async handle(req) -> FakeResponse`` and
    set ``req.kind`` (used to match scripted faults; ``primary_kind`` by default)."""

    primary_kind = "generate"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        slow_seconds: float = 1.0,
        retry_after: int = 1,
        max_side: int = 1024,
    ):
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.max_side = max_side
        self.requests: list[FakeRequest] = []
        self.errors: list[str] = []
        self.files: dict[str, StoredFile] = {}
        self._scripted: list[list[Any]] = []  # [fault_names, remaining, on_kind]
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.base_url = ""

    # -- lifecycle
    def start(self) -> "FakeMediaServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.base_url = "http://127.0.0.1:%d" % sock.getsockname()[1]
        config = uvicorn.Config(
            self, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._sock.close()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- faults & log
    def script(self, fault: str, times: int = 1, on: str | None = None) -> None:
        """Queue a fault for the next ``times`` requests of kind ``on`` (default:
        the primary/creating endpoint). ``fault`` may be comma-separated."""
        names = {f.strip() for f in fault.split(",") if f.strip()}
        with self._lock:
            self._scripted.append([names, times, on or self.primary_kind])

    def reset(self) -> None:
        with self._lock:
            for log in (self.requests, self._scripted, self.files, self.errors):
                log.clear()
            getattr(self, "jobs", {}).clear()

    def requests_of(self, kind: str) -> list[FakeRequest]:
        return [r for r in self.requests if r.kind == kind]

    def take_faults(self, req: FakeRequest, prompt: Any = None) -> set[str]:
        found = prompt_faults(prompt)
        kind = req.kind or self.primary_kind
        with self._lock:
            for entry in self._scripted:
                if entry[2] == kind and entry[1] > 0:
                    entry[1] -= 1
                    found |= entry[0]
                    break
            self._scripted = [e for e in self._scripted if e[1] > 0]
        req.faults = sorted(set(req.faults) | found)
        return found

    async def apply_slow(self, faults: set[str]) -> None:
        if "slow" in faults:
            await asyncio.sleep(self.slow_seconds)

    # -- files
    def store_file(self, data: bytes, content_type: str, ext: str, **meta: Any) -> str:
        name = f"{uuid.uuid4().hex}.{ext}"
        self.files[name] = StoredFile(content_type, data, meta)
        return self.url(f"/files/{name}")

    def serve_file(self, req: FakeRequest) -> FakeResponse:
        req.kind = "file"
        f = self.files.get(req.path[len("/files/") :])
        if f is None:
            return FakeResponse(404, b"Not Found", {"content-type": "text/plain"})
        headers = {"content-type": f.content_type}
        if "requested_size" in f.meta:
            headers["x-fake-requested-size"] = f.meta["requested_size"]
        return FakeResponse(200, f.data, headers)

    async def handle(self, req: FakeRequest) -> FakeResponse:  # pragma: no cover
        raise NotImplementedError

    # -- ASGI entry point
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        req = FakeRequest(scope["method"], scope["path"], query, headers, raw)
        ctype = headers.get("content-type", "")
        try:
            if ctype.startswith("multipart/form-data"):
                req.form = parse_multipart(raw, ctype)
                req.body = req.form.summary()
            elif raw:
                req.body = json.loads(raw)
        except Exception as exc:
            req.body = {"_unparsed": raw[:2000].decode("utf-8", "replace"), "_error": str(exc)}
        with self._lock:
            self.requests.append(req)
        try:
            if req.method == "GET" and req.path.startswith("/files/"):
                resp = self.serve_file(req)
            else:
                resp = await self.handle(req)
        except Exception:
            self.errors.append(traceback.format_exc())
            resp = FakeResponse(500, b"fake server crashed", {"content-type": "text/plain"})
        req.status = resp.status
        hdrs = [(k.encode(), str(v).encode()) for k, v in resp.headers.items()]
        hdrs.append((b"content-length", str(len(resp.body)).encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": hdrs})
        await send({"type": "http.response.body", "body": resp.body})
