"""Dashboard pages of this app (mounted at the site root by gpuniq_site.urls)."""

from django.urls import path

from . import models_page, pages

# "chat" (no arguments) is the web chat; the native API's "chat" route takes a chat_id, so
# reverse() tells them apart. Per-chat pages use their own names.
page_patterns: list = [
    path("models/", models_page.models_page, name="models"),
    path("chat/", pages.chat_home, name="chat"),
    path("chat/new", pages.chat_new, name="chat-new"),
    path("chat/list", pages.chat_list, name="chat-list"),
    path("chat/<int:chat_id>/", pages.chat_session, name="chat-session"),
    path("chat/<int:chat_id>/item", pages.chat_item, name="chat-item"),
    path("chat/<int:chat_id>/rename", pages.chat_rename, name="chat-rename"),
    path("chat/<int:chat_id>/delete", pages.chat_delete, name="chat-delete"),
    path("chat/<int:chat_id>/messages", pages.chat_transcript, name="chat-transcript"),
    path("chat/<int:chat_id>/send", pages.chat_send, name="chat-send"),
    path("chat/<int:chat_id>/stop", pages.chat_stop, name="chat-stop"),
    path("chat/<int:chat_id>/images/<int:message_id>", pages.chat_image, name="chat-image"),
]
