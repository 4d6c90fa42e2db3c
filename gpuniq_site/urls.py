"""URL map. Each app owns its routes in <app>/urls.py (API) and <app>/pages_urls.py (dashboard)."""

from django.contrib import admin
from django.urls import include, path

from accounts import pages_urls as account_pages
from billing import pages_urls as billing_pages
from billing import urls as billing_urls
from llm import anthropic_urls
from llm import native_urls as llm_native
from llm import pages_urls as llm_pages
from llm import urls as llm_urls
from llm.front.responses import urls as responses_urls
from media_jobs import pages_urls as media_pages
from media_jobs import urls as media_urls

from . import ops, views

openai_patterns = llm_urls.openai_patterns + responses_urls.openai_patterns + media_urls.openai_patterns
native_patterns = (
    llm_urls.native_patterns
    + llm_native.native_patterns
    + media_urls.native_patterns
    + billing_urls.native_patterns
)
page_patterns = (
    account_pages.page_patterns
    + billing_pages.page_patterns
    + llm_pages.page_patterns
    + media_pages.page_patterns
)

urlpatterns = [
    path("v1/openai/", include(openai_patterns)),
    path("v1/llm/", include(native_patterns)),
    path("v1/anthropic/", include(anthropic_urls.patterns)),
    path("", include(anthropic_urls.root_patterns)),
    path("webhooks/", include(billing_urls.webhook_patterns)),
    path("admin/", admin.site.urls),
    path("errors/", views.error_catalog, name="error-catalog"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("", views.home, name="home"),
    path("", include(page_patterns)),
]

handler404 = "gpuniq_site.views.not_found"
handler500 = "gpuniq_site.views.server_error"
