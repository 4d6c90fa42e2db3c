from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .keys import revoke_key
from .models import APIKey, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "balance", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    list_filter = ["is_staff", "is_active"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name", "time_zone"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    @admin.display(description="balance (USD)")
    def balance(self, obj):
        account = getattr(obj, "account", None)
        return account.balance if account else None

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


@admin.action(description="Revoke selected keys")
def revoke(modeladmin, request, queryset):
    for key in queryset.filter(revoked_at__isnull=True):
        revoke_key(key=key)


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "display",
        "user",
        "rpm",
        "monthly_spend_cap_usd",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    search_fields = ["user__email", "name", "last4"]
    list_filter = ["revoked_at"]
    readonly_fields = ["key_hash", "prefix", "last4", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke]

    def has_add_permission(self, request):
        return False  # keys are created by their owners (or create_api_key), shown once
