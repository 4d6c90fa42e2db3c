"""CORS for the API surfaces (/v1/…): any origin, never credentials.

Keys travel in headers (Authorization, X-API-Key), never in cookies, so a browser page on any
origin may call the API with its own key: preflights are answered here, before any view, with
the headers the browser asks for (the SDKs send their own, e.g. Anthropic's
`anthropic-dangerous-direct-browser-access`, OpenAI's `x-stainless-*`), and actual responses
carry `Access-Control-Allow-Origin: *`. `Access-Control-Allow-Credentials` is never sent, so
cookies never ride along. The dashboard (everything outside /v1/) gets no CORS headers at all.
"""

import re

METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSED = (
    b"x-request-id, request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    b"x-ratelimit-reset-requests, x-gpuniq-simulated, x-gpuniq-overhead-ms, x-gpuniq-cost-usd, "
    b"x-gpuniq-truncated-turns"
)
MAX_AGE = b"86400"
_HEADER_LIST = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_DEFAULT_ALLOWED = b"authorization, x-api-key, content-type, idempotency-key, x-request-id"


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _preflight(scope, send) -> None:
    asked = (_header(scope, b"access-control-request-headers") or b"").strip()
    allowed = asked if asked and len(asked) < 2048 and _HEADER_LIST.match(asked) else _DEFAULT_ALLOWED
    headers = [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", METHODS),
        (b"access-control-allow-headers", allowed),
        (b"access-control-max-age", MAX_AGE),
        (b"vary", b"access-control-request-headers"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class CorsApp:
    """ASGI wrapper for the /v1/ application (see gpuniq_site.asgi)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if _header(scope, b"origin") is None:
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            return await _preflight(scope, send)

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if not k.lower().startswith(b"access-control-")
                ]
                headers += [
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", EXPOSED),
                ]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_cors)
