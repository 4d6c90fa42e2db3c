"""Native API routes for chat sessions, terminal commands, usage and the API reference
(mounted under /v1/llm/)."""

from django.urls import path

from .views import chats as chat_views
from .views import docs as doc_views
from .views import terminal as terminal_views
from .views import usage as usage_views

native_patterns: list = [
    path("chats", chat_views.ChatListView.as_view(), name="chats"),
    path("chats/<int:chat_id>", chat_views.ChatDetailView.as_view(), name="chat"),
    path("chats/<int:chat_id>/messages", chat_views.send_message, name="chat-messages"),
    path("chats/<int:chat_id>/image-jobs/<str:job_id>", chat_views.image_job, name="chat-image-job"),
    path("terminal/commands", terminal_views.terminal_commands, name="terminal-commands"),
    path("usage/history", usage_views.UsageHistoryView.as_view(), name="usage-history"),
    path("usage/breakdown", usage_views.UsageBreakdownView.as_view(), name="usage-breakdown"),
    path("openapi.json", doc_views.openapi_json, name="native-openapi"),
    path("docs", doc_views.api_docs, name="native-docs"),
]
