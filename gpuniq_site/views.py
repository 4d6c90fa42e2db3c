"""Site-level pages: home, the error catalog, and /v1/-aware 404/500 handlers (health: gpuniq_site.ops)."""

from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static

from .errors import CATALOG, ApiError, doc_url
from .responses import error_response


def home(request):
    return render(request, "home.html", {"plain_layout": True})


def error_catalog(request):
    rows = [{"spec": spec, "doc_url": doc_url(spec)} for spec in CATALOG.values()]
    return render(request, "errors.html", {"rows": rows})


def favicon(request):
    """Browsers ask for /favicon.ico on their own; it lives under a hashed, long-cached static name."""
    response = HttpResponsePermanentRedirect(static("img/favicon.ico"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def not_found(request, exception=None):
    if request.path.startswith("/v1/"):
        return error_response(request, ApiError("not_found", method=request.method, path=request.path))
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/v1/"):
        return error_response(request, ApiError("internal_error"))
    return HttpResponse("Internal error", status=500, content_type="text/plain")
