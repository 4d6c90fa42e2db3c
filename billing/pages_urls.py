"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

from django.urls import URLPattern, URLResolver, path

from . import history_pages, pages, usage_pages

page_patterns: list[URLPattern | URLResolver] = [
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("billing/", pages.billing, name="billing"),
    path("billing/topup", pages.topup, name="topup"),
    path("billing/history", pages.topups, name="topup-history"),
    path("billing/receipts/<uuid:ref>/", history_pages.receipt, name="receipt"),
    path("billing/transactions/", history_pages.transactions, name="transactions"),
    path("billing/transactions.csv", history_pages.transactions_csv, name="transactions-csv"),
    path("usage/", usage_pages.usage, name="usage"),
    path("usage/export.csv", usage_pages.usage_csv, name="usage-csv"),
]
