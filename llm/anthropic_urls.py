"""The Anthropic Messages front door, mounted by gpuniq_site.urls at /v1/anthropic/ (the base URL
for the Anthropic SDKs and Claude Code: they append /v1/messages) and at the root (/v1/messages)."""

from django.urls import path

from .views import anthropic as views

patterns = [
    path("v1/messages", views.messages, name="anthropic-messages"),
    path("v1/messages/count_tokens", views.count_tokens, name="anthropic-count-tokens"),
    path("v1/models", views.models, name="anthropic-models"),
    path("v1/models/<str:model_id>", views.model, name="anthropic-model"),
]

root_patterns = [
    path("v1/messages", views.messages, name="root-messages"),
    path("v1/messages/count_tokens", views.count_tokens, name="root-count-tokens"),
]
