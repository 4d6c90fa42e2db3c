"""The Responses front door's routes, mounted under /v1/openai/ by gpuniq_site.urls."""

from django.urls import path

from . import views

openai_patterns = [
    path("responses", views.create_response, name="openai-responses"),
    path("responses/<str:response_id>", views.response_detail, name="openai-response"),
    path(
        "responses/<str:response_id>/input_items",
        views.response_input_items,
        name="openai-response-input-items",
    ),
]
