"""Billing routes: the native balance endpoint and Stripe webhooks (mounted at /webhooks/)."""

from django.urls import path

from . import views, webhooks

native_patterns = [
    path("balance", views.balance, name="balance"),
]
webhook_patterns: list = [
    path("stripe", webhooks.stripe_webhook, name="stripe-webhook"),
]
