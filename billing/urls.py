"""Billing routes: the native balance endpoint and payment webhooks (mounted at /webhooks/)."""

from django.urls import URLPattern, URLResolver, path

from . import rail_webhooks, views, webhooks

native_patterns = [
    path("balance", views.balance, name="balance"),
]
webhook_patterns: list[URLPattern | URLResolver] = [
    path("stripe", webhooks.stripe_webhook, name="stripe-webhook"),
    path("yookassa", rail_webhooks.yookassa_webhook, name="yookassa-webhook"),
    path("btcpay", rail_webhooks.btcpay_webhook, name="btcpay-webhook"),
]
