from django.contrib import admin

from .models import MediaAsset, MediaJob


@admin.register(MediaJob)
class MediaJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "model",
        "user",
        "status",
        "estimated_cost_usd",
        "cost_usd",
        "route",
        "created_at",
    )
    list_filter = ("kind", "status", "simulated")
    search_fields = ("id", "model", "user__email", "request_id")
    readonly_fields = [f.name for f in MediaJob._meta.fields]


@admin.register(MediaAsset)
class MediaAssetAdmin(admin.ModelAdmin):
    list_display = ("path", "kind", "model", "user", "mime_type", "size_bytes", "created_at")
    list_filter = ("kind", "simulated")
    search_fields = ("path", "model", "user__email")
    readonly_fields = [f.name for f in MediaAsset._meta.fields]
