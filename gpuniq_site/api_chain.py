"""The middleware chain of every request under /v1/, built from settings.API_MIDDLEWARE.

Both API paths load their chain here: the lean ASGI path of the async views
(gpuniq_site.fast_asgi.LeanApiApp) and Django's ASGI handler of the DRF views (ApiASGIHandler
below). A middleware added to API_MIDDLEWARE therefore runs on both; one that either path could
not run as Django would is refused when the handler is built, never skipped:

- it must be async-capable (the lean path never leaves the event loop);
- its process_exception, if any, must be sync: the lean path calls it on the event loop (no
  thread hop), so it must not block;
- process_template_response is refused: API responses are not template responses.

MIDDLEWARE (the pages' stack) must be exactly API_MIDDLEWARE followed by SITE_MIDDLEWARE, so a
middleware is always added to a named group and never to one stack alone by accident.
"""

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string


def check_declaration() -> None:
    """Raise ImproperlyConfigured unless MIDDLEWARE == API_MIDDLEWARE + SITE_MIDDLEWARE."""
    declared = [*settings.API_MIDDLEWARE, *settings.SITE_MIDDLEWARE]
    if list(settings.MIDDLEWARE) != declared:
        unknown = [path for path in settings.MIDDLEWARE if path not in declared]
        raise ImproperlyConfigured(
            "MIDDLEWARE must be [*API_MIDDLEWARE, *SITE_MIDDLEWARE] (gpuniq_site/settings.py): add a "
            "middleware to API_MIDDLEWARE to run it on every /v1/ request (both API paths) as well as "
            f"the pages, or to SITE_MIDDLEWARE for the pages alone. Not in either group: {unknown or 'none'}"
        )


def _instance(path: str, get_response):
    """The middleware at `path` around `get_response`, or None when it opts out (MiddlewareNotUsed)."""
    factory = import_string(path)
    if not getattr(factory, "async_capable", False):
        raise ImproperlyConfigured(f"{path} is in API_MIDDLEWARE but is not async-capable")
    try:
        instance = factory(get_response)
    except MiddlewareNotUsed:
        return None
    if instance is None:
        raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
    if hasattr(instance, "process_template_response"):
        raise ImproperlyConfigured(f"{path} has process_template_response, which the API paths do not run")
    if hasattr(instance, "process_exception") and iscoroutinefunction(instance.process_exception):
        raise ImproperlyConfigured(f"{path}.process_exception must be sync on the API paths")
    return instance


class ApiMiddlewareLoader:
    """load_middleware() for a Django BaseHandler subclass: Django's own loading, but from
    API_MIDDLEWARE, async only. The chain ends in the handler's _get_response_async."""

    def load_middleware(self, is_async=False):
        if not is_async:
            raise ImproperlyConfigured("the API middleware chain is async only")
        check_declaration()
        self._view_middleware, self._exception_middleware = [], []
        self._template_response_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.API_MIDDLEWARE):
            instance = _instance(path, handler)
            if instance is None:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(True, instance.process_view))
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class ApiASGIHandler(ApiMiddlewareLoader, ASGIHandler):
    """Django's ASGI handler with API_MIDDLEWARE as its chain: the DRF views under /v1/."""
