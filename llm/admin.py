"""Operator views of the catalog and chats, and the route-health page (error rate and latency per
upstream route over the last hour, read from the usage rows)."""

from datetime import timedelta

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from billing import usage_history

from . import catalog
from .models import CatalogModel, Chat, ChatMessage, Route

ROUTE_HEALTH_WINDOW = timedelta(hours=1)


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0
    ordering = ["position"]


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "kind",
        "vendor",
        "enabled",
        "input_per_mtok",
        "output_per_mtok",
        "per_image",
        "per_video",
    ]
    list_filter = ["kind", "vendor", "enabled"]
    search_fields = ["slug", "name"]
    inlines = [RouteInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        catalog.invalidate()

    def get_urls(self):
        # The operator's route-health page hangs off the catalog's admin; the admin index links to it.
        view = self.admin_site.admin_view(self.route_health_view)
        return [path("route-health/", view, name="llm_route_health")] + super().get_urls()

    def route_health_view(self, request):
        since = timezone.now() - ROUTE_HEALTH_WINDOW
        context = {
            **self.admin_site.each_context(request),
            "title": "Route health (last hour)",
            "rows": usage_history.route_health(since),
            "since": since,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/llm/route_health.html", context)


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = (
        "role",
        "kind",
        "status",
        "model",
        "content",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "truncated_turns",
        "job_id",
        "request_id",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "user", "model", "created_at", "updated_at"]
    search_fields = ["title", "user__email"]
    readonly_fields = ["user", "created_at", "updated_at"]
    inlines = [ChatMessageInline]
