"""Settings of the server in tests/gpuniq_site/test_api_pipeline.py: the project's own, with one more
middleware declared in API_MIDDLEWARE and a URLconf adding a view whose stream body fails."""

from gpuniq_site.settings import *  # noqa: F403
from gpuniq_site.settings import API_MIDDLEWARE, SITE_MIDDLEWARE

API_MIDDLEWARE = [*API_MIDDLEWARE, "tests.gpuniq_site.pipeline_urls.StampMiddleware"]
MIDDLEWARE = [*API_MIDDLEWARE, *SITE_MIDDLEWARE]
ROOT_URLCONF = "tests.gpuniq_site.pipeline_urls"
