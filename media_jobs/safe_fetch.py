"""Server-side fetching of user-supplied media URLs, refusing SSRF.

Accepted inputs: ``data:<mime>;base64,...`` URIs, bare base64 (images only) and
``https://`` URLs. For https the host is resolved once, every resolved address
must be globally routable, and the connection is pinned to the vetted IP while
the original hostname is sent as the Host header and as TLS SNI (httpcore's
``sni_hostname`` request extension), so certificate checks still apply to the
real name and a DNS rebind between check and connect cannot redirect us.
Redirects are followed manually (each hop re-vetted), the body is streamed
under a byte cap, and the content type is sniffed from the bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import io
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

import httpx
from PIL import Image

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# ISO-BMFF brands that are still images (HEIF/AVIF), not video.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
_USER_AGENT = "GPUniq-gateway-fetch/1.0"

Resolver = Callable[[str, int], "Awaitable[Iterable[Any]] | Iterable[Any]"]


class FetchRefused(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Media:
    data: bytes
    mime_type: str
    source: str  # "data_uri" | "base64" | "https"


def is_public_address(ip: str) -> bool:
    """True only for globally routable unicast addresses (IPv4 or IPv6)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])  # drop IPv6 zone id
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return bool(
        addr.is_global
        and not (
            addr.is_private
            or addr.is_loopback
            or addr.is_link_local
            or addr.is_multicast
            or addr.is_reserved
            or addr.is_unspecified
        )
    )


# ---------------------------------------------------------------- sniffing --
def sniff_video_mime(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        if data[8:12] in _IMAGE_BRANDS:
            return None
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    return None


def sniff_image(data: bytes) -> str | None:
    """Open and verify with Pillow (limited to web formats); return the mime type."""
    try:
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as img:
            fmt = img.format
            img.verify()
    except Exception:  # noqa: BLE001 - any decoder failure means "not an image"
        return None
    return Image.MIME.get(fmt or "")


def _verify_kind(data: bytes, kind: str, field: str) -> str:
    mime = sniff_image(data) if kind == "image" else sniff_video_mime(data)
    if mime is None:
        raise FetchRefused("url_bad_content", field, f"content is not a valid {kind}")
    return mime


# ------------------------------------------------------------ inline data --
def _b64decode(payload: str, field: str, code: str, max_bytes: int) -> bytes:
    payload = re.sub(r"\s+", "", payload)
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise FetchRefused("url_too_large", field, f"data exceeds {max_bytes} bytes")
    payload += "=" * (-len(payload) % 4)
    try:
        if "-" in payload or "_" in payload:
            data = base64.urlsafe_b64decode(payload.encode("ascii"))
        else:
            data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise FetchRefused(code, field, "malformed base64 data") from None
    if not data:
        raise FetchRefused(code, field, "empty base64 data")
    if len(data) > max_bytes:
        raise FetchRefused("url_too_large", field, f"data exceeds {max_bytes} bytes")
    return data


def _decode_data_uri(url: str, kind: str, field: str, max_bytes: int) -> Media:
    header, sep, payload = url[5:].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    if not sep or "base64" not in params[1:] or "/" not in params[0]:
        raise FetchRefused("invalid_data_uri", field, "expected data:<mime>;base64,<payload>")
    if params[0].split("/", 1)[0] != kind:
        raise FetchRefused("url_bad_content", field, f"data URI type {params[0]!r} is not an {kind}")
    data = _b64decode(payload, field, "invalid_data_uri", max_bytes)
    return Media(data, _verify_kind(data, kind, field), "data_uri")


# ------------------------------------------------------------------ https --
def check_https_url(url: str | httpx.URL, field: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchRefused("url_scheme", field, "malformed URL") from None
    if parsed.scheme != "https":
        raise FetchRefused("url_scheme", field, "only https:// URLs are allowed")
    if not parsed.raw_host:
        raise FetchRefused("url_scheme", field, "URL has no host")
    if parsed.userinfo:
        raise FetchRefused("url_scheme", field, "credentials in URLs are not allowed")
    return parsed


async def _default_resolver(host: str, port: int) -> list[Any]:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def resolve_public(host: str, port: int, resolver: Resolver | None, field: str) -> str:
    """Resolve ``host``; refuse unless every address is public. Returns the IP to pin."""
    try:
        return_ip = str(ipaddress.ip_address(host))
        addresses = [return_ip]
    except ValueError:
        try:
            result = (resolver or _default_resolver)(host, port)
            if inspect.isawaitable(result):
                result = await result
            addresses = [r[4][0] if isinstance(r, tuple) else str(r) for r in result]
        except (OSError, UnicodeError):
            addresses = []
    if not addresses:
        raise FetchRefused("url_unresolvable", field, f"cannot resolve host {host!r}")
    for ip in addresses:
        if not is_public_address(ip):
            raise FetchRefused("url_private_address", field, "URL resolves to a non-public address")
    return addresses[0].split("%", 1)[0]


def pinned_request(client: httpx.AsyncClient, url: httpx.URL, ip: str, kind: str) -> httpx.Request:
    """Build a request to ``ip`` carrying the original Host header and SNI."""
    # SNI + certificate hostname check use the original name (ssl handles IP literals).
    extensions = {"sni_hostname": url.raw_host.decode("ascii")}
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Accept": f"{kind}/*",
        "Accept-Encoding": "identity",
        "User-Agent": _USER_AGENT,
    }
    return client.build_request("GET", url.copy_with(host=ip), headers=headers, extensions=extensions)


async def fetch_https_bytes(
    client: httpx.AsyncClient, url: str, *, field: str, kind: str, max_bytes: int, resolver: Resolver | None
) -> bytes:
    """GET with manual, re-vetted redirects (max 3) and a streamed size cap."""
    current: str | httpx.URL = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = check_https_url(current, field)
        ip = await resolve_public(target.raw_host.decode("ascii"), target.port or 443, resolver, field)
        response = await client.send(
            pinned_request(client, target, ip, kind), stream=True, follow_redirects=False
        )
        try:
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchRefused("url_http_error", field, "redirect without Location")
                current = target.join(location)
                continue
            if not 200 <= response.status_code < 300:
                raise FetchRefused("url_http_error", field, f"upstream returned HTTP {response.status_code}")
            encoding = response.headers.get("content-encoding", "identity").lower()
            if encoding not in ("", "identity"):
                raise FetchRefused("url_bad_content", field, f"unsupported content-encoding {encoding!r}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchRefused("url_too_large", field, f"content exceeds {max_bytes} bytes")
            buf = bytearray()
            # identity-only (checked above), so aiter_bytes == raw bytes; it also
            # works for pre-read responses (e.g. httpx.MockTransport in tests).
            async for chunk in response.aiter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    raise FetchRefused("url_too_large", field, f"content exceeds {max_bytes} bytes")
            return bytes(buf)
        finally:
            await response.aclose()
    raise FetchRefused("url_too_many_redirects", field, f"more than {MAX_REDIRECTS} redirects")


# ------------------------------------------------------------------ entry --
async def fetch_media(
    url: str,
    *,
    field: str,
    kind: str = "image",
    max_bytes: int = 20 * 1024 * 1024,
    timeout: float = 20.0,
    client: httpx.AsyncClient | None = None,
    resolver: Resolver | None = None,
) -> Media:
    if kind not in ("image", "video"):
        raise ValueError(f"unsupported kind {kind!r}")
    if not isinstance(url, str) or not url.strip():
        raise FetchRefused("url_scheme", field, "a URL or data URI is required")
    url = url.strip()
    scheme_match = _SCHEME_RE.match(url)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    if scheme == "data":
        return _decode_data_uri(url, kind, field, max_bytes)
    if scheme is None:
        if kind != "image":
            raise FetchRefused("url_scheme", field, "expected an https:// URL or data URI")
        data = _b64decode(url, field, "invalid_base64", max_bytes)
        return Media(data, _verify_kind(data, kind, field), "base64")
    if scheme != "https":
        raise FetchRefused("url_scheme", field, "only https:// URLs are allowed")

    own_client = client is None
    session = (  # own: a fresh pool per fetch, no connection reuse across SNI names
        httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout))
        if client is None
        else client
    )
    try:
        async with asyncio.timeout(timeout):
            data = await fetch_https_bytes(
                session, url, field=field, kind=kind, max_bytes=max_bytes, resolver=resolver
            )
    except (TimeoutError, httpx.TimeoutException):
        raise FetchRefused("url_timeout", field, f"fetch exceeded {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise FetchRefused("url_http_error", field, f"fetch failed: {type(exc).__name__}") from None
    finally:
        if own_client:
            await session.aclose()
    return Media(data, _verify_kind(data, kind, field), "https")
