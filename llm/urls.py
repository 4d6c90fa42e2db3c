"""The chat gateway's routes (mounted under /v1/openai/ and /v1/llm/ by gpuniq_site.urls)."""

from django.urls import path

from .views import chat as chat_views
from .views import chat_jobs as chat_job_views
from .views import models as model_views

openai_patterns = [
    path("models", model_views.openai_models, name="openai-models"),
    path("models/<path:model_id>", model_views.openai_model, name="openai-model"),
    path("chat/completions", chat_views.openai_chat_completions, name="openai-chat"),
]

native_patterns = [
    path("models", model_views.native_models, name="native-models"),
    path("models/catalog", model_views.public_catalog, name="catalog"),
    path("chat/completions", chat_views.native_chat_completions, name="native-chat"),
    path("chat/jobs", chat_job_views.create_chat_job, name="chat-jobs"),
    path("chat/jobs/<str:job_id>", chat_job_views.get_chat_job, name="chat-job"),
]
