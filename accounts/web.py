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
from django.template.loader import render_to_string
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError

from . import ratelimit
from .keys import dashboard_principal

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


def error_fragment(error: ApiError) -> HttpResponse:
    """A catalog error as a small alert fragment, with the error's own status."""
    html = render_to_string("partials/_error_alert.html", {"error": error})
    return HttpResponse(html, status=error.status, headers=error.headers)


def dashboard_endpoint(view: Any = None, *, counted: bool = True) -> Any:
    """Async dashboard endpoint: a signed-in session (CSRF is the middleware's), the user's dashboard
    principal on request.principal, and (when `counted`) the key's rate limit, like the API."""
    if view is None:
        return functools.partial(dashboard_endpoint, counted=counted)

    @functools.wraps(view)
    async def wrapper(request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        user = await request.auser()
        if not user.is_authenticated:
            return HttpResponse("Your session ended: sign in again.", status=401)
        request.user = user  # the lazy sync user must not be touched from the event loop
        try:
            request.principal = await run_db(dashboard_principal, user)
            if counted:
                (await ratelimit.ahit(request.principal.key_id, request.principal.rpm)).raise_if_denied()
            with timezone.override(user_zone(user)):
                return await view(request, *args, **kwargs)
        except ApiError as error:
            return error_fragment(error)

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
