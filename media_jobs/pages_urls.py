"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

from django.urls import path

from . import pages

page_patterns: list = [
    path("studio/", pages.studio_page, name="studio"),
    path("studio/params", pages.studio_params, name="studio-params"),
    path("studio/estimate", pages.studio_estimate, name="studio-estimate"),
    path("studio/gallery", pages.studio_gallery, name="studio-gallery"),
    path("studio/generate", pages.studio_generate, name="studio-generate"),
    path("studio/jobs/<str:job_id>", pages.studio_job, name="studio-job"),
]
