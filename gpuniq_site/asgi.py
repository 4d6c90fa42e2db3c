"""ASGI entry point.

- Async API views under /v1/ (the hot path) run through gpuniq_site.fast_asgi.LeanApiApp.
- Every /v1/ request passes gpuniq_site.cors.CorsApp (preflights, any origin, no credentials).
- Other /v1/ requests (DRF views) go through Django's handler with the same API middleware
  (settings.API_MIDDLEWARE: request ids, error envelopes; gpuniq_site.api_chain builds both chains).
- Everything else (dashboard, admin, static files) gets the full stack: sessions, CSRF, auth.
- Lifespan events warm each worker process before its first request and, at shutdown, wait for
  requests in flight to settle before closing its pools (gpuniq_site.lifespan).
"""

import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpuniq_site.settings")
django.setup(set_prefix=False)

from . import lifespan  # noqa: E402
from .api_chain import ApiASGIHandler  # noqa: E402
from .cors import CorsApp  # noqa: E402
from .fast_asgi import LeanApiApp  # noqa: E402

site_app = ASGIHandler()
api_app = CorsApp(LeanApiApp(fallback=ApiASGIHandler()))


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan.serve(receive, send)
    lifespan.in_flight.open += 1  # shutdown waits for these (a cut stream still settles its hold)
    try:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            return await api_app(scope, receive, send)
        return await site_app(scope, receive, send)
    finally:
        lifespan.in_flight.open -= 1
