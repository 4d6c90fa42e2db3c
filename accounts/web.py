"""What every dashboard page shares: sign-in, the user's time zone, and htmx partials.

Pages are server-rendered; an htmx request gets only the fragment it swaps in
(`templates/<app>/_<fragment>.html`), any other request the whole page around it.
"""

import functools
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from .models import User

P = ParamSpec("P")
Response = TypeVar("Response", bound=HttpResponseBase)

UTC = zoneinfo.ZoneInfo("UTC")


class MemberRequest(HttpRequest):
    """For annotations: a request that member_page let through (a signed-in user) and that
    django-htmx's middleware has given its `htmx` details."""

    user: "User"
    htmx: HtmxDetails


def user_zone(user: object) -> zoneinfo.ZoneInfo:
    """The user's time zone; an unknown name (edited by hand, removed from tzdata) falls back to UTC."""
    try:
        return zoneinfo.ZoneInfo(getattr(user, "time_zone", "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def member_page(
    view: Callable[Concatenate[MemberRequest, P], Response],
) -> Callable[Concatenate[HttpRequest, P], Response]:
    """A signed-in user's page: anonymous visitors go to the login page; times render in the user's zone."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> Response:
        with timezone.override(user_zone(request.user)):
            return view(cast(MemberRequest, request), *args, **kwargs)  # login_required let it in

    return wrapper


def wants_fragment(request: HttpRequest) -> bool:
    htmx: HtmxDetails | None = getattr(request, "htmx", None)  # None: not through the middleware
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def page_or_fragment(
    request: HttpRequest, page: str, fragment: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The fragment for htmx swaps, the page (which includes the fragment) otherwise."""
    return render(request, fragment if wants_fragment(request) else page, context, status=status)


def no_store(response: Response) -> Response:
    """For responses that carry a secret (a new key): never cached by the browser or a proxy."""
    response["Cache-Control"] = "no-store"
    return response
