"""Operator views of money. Balances and entries are read-only; adjustments go through the ledger."""

import uuid
from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from . import ledger
from .models import Account, Hold, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AdjustmentForm(forms.Form):
    amount = forms.DecimalField(max_digits=20, decimal_places=8, help_text="USD; negative to debit")
    reason = forms.CharField(max_length=400)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("amount must not be zero")
        return amount


@admin.action(description="Adjust balance (writes a ledger entry with a reason)")
def adjust_balance(modeladmin, request, queryset):
    form = AdjustmentForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        for account in queryset:
            ledger.post(account_id=account.pk, amount=form.cleaned_data["amount"], kind=LedgerEntry.ADJUSTMENT,
                        idempotency_key=f"admin:{uuid.uuid4().hex}", reason=form.cleaned_data["reason"],
                        created_by=request.user)
        modeladmin.message_user(request, f"Adjusted {queryset.count()} account(s).", messages.SUCCESS)
        return None
    context = {**modeladmin.admin_site.each_context(request), "form": form, "accounts": queryset,
               "action": "adjust_balance", "opts": modeladmin.model._meta,
               "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
    return TemplateResponse(request, "admin/billing/adjust_balance.html", context)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "held", "available", "updated_at"]
    search_fields = ["user__email"]
    actions = [adjust_balance]
    readonly_fields = ["user", "balance", "held", "updated_at"]

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_superuser  # lets the changelist run actions, no edit form


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "amount", "captured", "status", "purpose", "request_id", "created_at"]
    list_filter = ["status", "purpose"]
    search_fields = ["request_id", "idempotency_key", "account__user__email"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "account", "kind", "amount", "held_delta", "balance_after", "reason"]
    list_filter = ["kind"]
    search_fields = ["idempotency_key", "account__user__email", "reason"]
