from django.contrib import admin

from billing.admin import ReadOnlyAdmin

from . import catalog
from .models import CatalogModel, Route, UsageLog


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


@admin.register(UsageLog)
class UsageLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "user",
        "model",
        "endpoint",
        "status",
        "error_code",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "request_id",
    ]
    list_filter = ["status", "endpoint", "model"]
    search_fields = ["request_id", "user__email", "model"]


from .models import Chat, ChatMessage  # noqa: E402  (appended with the chat sessions)


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
