"""What every dashboard page shares: sign-in, the user's time zone, and htmx partials.

Pages are server-rendered; an htmx request gets only the fragment it swaps in
(`templates/<app>/_<fragment>.html`), any other request the whole page around it.
"""

import functools
import zoneinfo

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

UTC = zoneinfo.ZoneInfo("UTC")


def user_zone(user) -> zoneinfo.ZoneInfo:
    """The user's time zone; an unknown name (edited by hand, removed from tzdata) falls back to UTC."""
    try:
        return zoneinfo.ZoneInfo(getattr(user, "time_zone", "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def member_page(view):
    """A signed-in user's page: anonymous visitors go to the login page; times render in the user's zone."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        with timezone.override(user_zone(request.user)):
            return view(request, *args, **kwargs)

    return wrapper


def wants_fragment(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def page_or_fragment(request, page: str, fragment: str, context: dict, status: int = 200):
    """The fragment for htmx swaps, the page (which includes the fragment) otherwise."""
    return render(request, fragment if wants_fragment(request) else page, context, status=status)


def no_store(response):
    """For responses that carry a secret (a new key): never cached by the browser or a proxy."""
    response["Cache-Control"] = "no-store"
    return response
