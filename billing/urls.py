"""Billing routes: the native balance endpoint and (dashboard issue) Stripe webhooks."""

from django.urls import path

from . import views

native_patterns = [
    path("balance", views.balance, name="balance"),
]
webhook_patterns: list = []
