"""Media HTTP on top of the one choke point (llm.providers.http): the same pooled clients, the
same status mapping and scrubbing, plus what media needs: GET/PUT, multipart uploads, and
capped downloads of vendor result URLs.

Only vendor URLs go through here (operator-trusted: the configured base URL, or result URLs a
vendor returned). User-supplied URLs always go through media_jobs.safe_fetch instead.
"""

from pathlib import Path

import httpx
from django.conf import settings

from llm.providers.http import ErrorParser, client, generic_error
from llm.upstreams import Upstream

from .base import Deadline, UpstreamError


def transport_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("timeout", "the provider did not answer in time")
    return UpstreamError("connect", "could not reach the provider")


def timeout_for(deadline: Deadline, cap: float = 120.0) -> httpx.Timeout:
    """Read timeout: what is left of the budget (at least a second), at most `cap` per call."""
    read = max(1.0, min(cap, deadline.remaining()))
    return httpx.Timeout(connect=settings.GPUNIQ_UPSTREAM_CONNECT_TIMEOUT, read=read, write=60.0, pool=30.0)


async def call(
    upstream: Upstream,
    method: str,
    url: str,
    *,
    deadline: Deadline,
    headers: dict | None = None,
    json: dict | None = None,
    data: dict | None = None,
    files: list | None = None,
    error_parser: ErrorParser = generic_error,
    cap: float = 120.0,
) -> httpx.Response:
    """One request to the vendor; statuses >= 400 become UpstreamError through `error_parser`."""
    if deadline.expired:
        raise UpstreamError("timeout", "the generation budget ran out")
    try:
        response = await client(upstream).request(
            method,
            url,
            headers=headers,
            json=json,
            data=data,
            files=files,
            timeout=timeout_for(deadline, cap),
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc) from None
    if response.status_code >= 400:
        raise error_parser(response.status_code, response.content, response.headers)
    return response


def json_of(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(
            "malformed", "the provider sent a reply that is not JSON", status=response.status_code
        ) from None
    if not isinstance(body, dict):
        raise UpstreamError("malformed", "the provider sent an unexpected reply", status=response.status_code)
    return body


async def download(
    upstream: Upstream,
    url: str,
    *,
    deadline: Deadline,
    headers: dict | None = None,
    max_bytes: int | None = None,
) -> tuple[bytes, str]:
    """GET a vendor file into memory (images). Returns (bytes, content type)."""
    limit = max_bytes or settings.GPUNIQ_MEDIA_OUTPUT_MAX_BYTES
    chunks, size = [], 0
    async with _stream(upstream, url, deadline, headers) as response:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise UpstreamError("malformed", "the provider's file is larger than allowed")
            chunks.append(chunk)
        return b"".join(chunks), response.headers.get("content-type", "").split(";")[0].strip()


async def download_to(
    upstream: Upstream, url: str, path: Path, *, deadline: Deadline, headers: dict | None = None
) -> int:
    """Stream a vendor file (videos) to `path` under the size cap. Returns the byte count."""
    limit = settings.GPUNIQ_MEDIA_OUTPUT_MAX_BYTES
    size = 0
    partial = path.with_suffix(path.suffix + ".part")
    try:
        async with _stream(upstream, url, deadline, headers) as response:
            with open(partial, "wb") as fh:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise UpstreamError("malformed", "the provider's file is larger than allowed")
                    fh.write(chunk)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return size


class _stream:
    """async with: a streamed GET whose status was checked; transport errors mapped."""

    def __init__(self, upstream: Upstream, url: str, deadline: Deadline, headers: dict | None):
        self.upstream, self.url, self.deadline, self.headers = upstream, url, deadline, headers
        self.response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        if not self.url.startswith(("https://", "http://")):
            raise UpstreamError("malformed", "the provider returned an unusable file URL")
        http = client(self.upstream)
        request = http.build_request(
            "GET", self.url, headers=self.headers, timeout=timeout_for(self.deadline)
        )
        try:
            self.response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        status = self.response.status_code
        if not 200 <= status < 300:  # redirects are not followed, even from a vendor
            await self.response.aclose()
            raise UpstreamError(
                "server" if status >= 500 else "not_found",
                f"the provider's file could not be downloaded (HTTP {status})",
                status=status,
            )
        return self.response

    async def __aexit__(self, exc_type, exc, tb):
        if self.response is not None:
            await self.response.aclose()
        if isinstance(exc, httpx.HTTPError):
            raise transport_error(exc) from None
        return False
