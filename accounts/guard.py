"""The API-key gate for async views: authenticate, rate-limit, attach the principal."""

import functools

from gpuniq_site.errors import ApiError
from gpuniq_site.responses import error_response

from .gate import admit
from .keys import extract_raw_key


def key_required(view):
    """Async view decorator. Sets request.principal; errors answer in the surface's envelope."""

    @functools.wraps(view)
    async def wrapper(request, *args, **kwargs):
        try:
            principal, decision = await admit(extract_raw_key(request.headers))
            request.ratelimit_headers = decision.headers()
            decision.raise_if_denied()
            request.principal = principal
            return await view(request, *args, **kwargs)
        except ApiError as error:
            return error_response(request, error)

    return wrapper
