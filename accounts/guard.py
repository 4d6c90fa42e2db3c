"""The API-key gate for async views: authenticate, rate-limit, attach the principal."""

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, cast

from django.http import HttpRequest, HttpResponseBase

from gpuniq_site.errors import ApiError
from gpuniq_site.responses import error_response

from .gate import admit
from .keys import Principal, extract_raw_key

P = ParamSpec("P")


class KeyRequest(HttpRequest):
    """For annotations: a request that key_required let through, with its caller's principal."""

    principal: Principal
    ratelimit_headers: dict[str, str]


def key_required(
    view: Callable[Concatenate[KeyRequest, P], Awaitable[HttpResponseBase]],
) -> Callable[Concatenate[HttpRequest, P], Coroutine[Any, Any, HttpResponseBase]]:
    """Async view decorator. Sets request.principal; errors answer in the surface's envelope."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        admitted = cast(KeyRequest, request)  # given its principal and rate-limit headers here
        try:
            principal, decision = await admit(extract_raw_key(request.headers))
            admitted.ratelimit_headers = decision.headers()
            decision.raise_if_denied()
            admitted.principal = principal
            return await view(admitted, *args, **kwargs)
        except ApiError as error:
            return error_response(request, error)

    return wrapper
