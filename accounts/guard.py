"""The API-key gate for async views: authenticate, rate-limit, attach the principal."""

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, cast

from django.http import HttpRequest, HttpResponseBase

from gpuniq_site import metrics
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import error_response

from . import gate
from .keys import Principal, request_raw_key

P = ParamSpec("P")
View = Callable[Concatenate["KeyRequest", P], Awaitable[HttpResponseBase]]
Wrapped = Callable[Concatenate[HttpRequest, P], Coroutine[Any, Any, HttpResponseBase]]


class KeyRequest(HttpRequest):
    """For annotations: a request that key_required let through, with its caller's principal."""

    principal: Principal
    ratelimit_headers: dict[str, str]


def key_required(view: View[P]) -> Wrapped[P]:
    """Async view decorator. Sets request.principal; errors answer in the surface's envelope."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        admitted = cast(KeyRequest, request)  # given its principal and rate-limit headers here
        try:
            principal, decision = await gate.admit(request_raw_key(request))
            admitted.ratelimit_headers = decision.headers()
            decision.raise_if_denied()
            admitted.principal = principal
            return await view(admitted, *args, **kwargs)
        except ApiError as error:
            return error_response(request, error)

    return wrapper


def key_required_overlapped(view: View[P]) -> Wrapped[P]:
    """key_required for views whose first side effect is a chat hold (llm.chat.hold_for) or a
    refused call's usage row (llm.chat.refused): for a key this process admitted moments ago, the
    view starts at once with that principal while its admission is on its way, and both wait for
    the admission's answer before they touch the ledger (accounts.gate.confirm_pending). Whatever
    the view answers, the admission's refusal (401, 403, 429) answers instead; if the key's
    principal changed meanwhile, the view runs again with the new one."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        admitted = cast(KeyRequest, request)
        raw_key = request_raw_key(request)
        early = gate.begin(raw_key)
        try:
            if early is None:
                principal, decision = await gate.admit(raw_key)
            else:
                metrics.ADMISSIONS_OVERLAPPED.inc()
                admitted.principal = early.principal
                response = await _run_early(early, view, admitted, *args, **kwargs)
                principal, decision = await early.confirm()
            admitted.ratelimit_headers = decision.headers()
            decision.raise_if_denied()
            if early is not None and response is not None:
                return response
            admitted.principal = principal
            return await view(admitted, *args, **kwargs)
        except ApiError as error:
            return error_response(request, error)

    return wrapper


async def _run_early(
    early: gate.Early, view: View[P], request: KeyRequest, *args: P.args, **kwargs: P.kwargs
) -> HttpResponseBase | None:
    """The view's answer with the remembered principal, or None when it must run again (Stale).
    A client error it raises waits for the admission, which answers first if it refuses."""
    token = gate.pending.set(early)
    try:
        return await view(request, *args, **kwargs)
    except gate.Stale:
        return None
    except ApiError:
        principal, decision = await early.confirm()
        request.ratelimit_headers = decision.headers()
        decision.raise_if_denied()
        raise
    finally:
        gate.pending.reset(token)
