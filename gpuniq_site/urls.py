from django.contrib import admin
from django.urls import include, path

from billing import views as billing_views
from llm.views import chat as chat_views
from llm.views import models as model_views

from . import views

openai_patterns = [
    path("models", model_views.openai_models, name="openai-models"),
    path("chat/completions", chat_views.openai_chat_completions, name="openai-chat"),
]

native_patterns = [
    path("models", model_views.native_models, name="native-models"),
    path("models/catalog", model_views.public_catalog, name="catalog"),
    path("balance", billing_views.balance, name="balance"),
    path("chat/completions", chat_views.native_chat_completions, name="native-chat"),
]

urlpatterns = [
    path("v1/openai/", include(openai_patterns)),
    path("v1/llm/", include(native_patterns)),
    path("admin/", admin.site.urls),
    path("errors/", views.error_catalog, name="error-catalog"),
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
]

handler404 = "gpuniq_site.views.not_found"
handler500 = "gpuniq_site.views.server_error"
