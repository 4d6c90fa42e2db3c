"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

from django.urls import path

from . import pages, usage_pages

page_patterns: list = [
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("billing/", pages.billing, name="billing"),
    path("billing/topup", pages.topup, name="topup"),
    path("billing/history", pages.topups, name="topup-history"),
    path("usage/", usage_pages.usage, name="usage"),
    path("usage/export.csv", usage_pages.usage_csv, name="usage-csv"),
]
