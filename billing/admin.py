"""Operator views of money and usage. Balances, entries and usage rows are read-only; adjustments go
through the ledger."""

import uuid
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from . import ledger
from .money import format_usd
from .models import Account, Hold, KeySpend, LedgerEntry, Loss, PaymentEvent, StripeEvent, TopUp, UsageLog

if TYPE_CHECKING:
    from accounts.models import User

    ModelAdmin = admin.ModelAdmin[Any]  # generic in django-stubs only
else:
    ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AdjustmentForm(forms.Form):
    amount = forms.DecimalField(max_digits=20, decimal_places=8, help_text="USD; negative to debit")
    reason = forms.CharField(max_length=400)

    def clean_amount(self) -> Any:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("amount must not be zero")
        return amount


@admin.action(description="Adjust balance (writes a ledger entry with a reason)")
def adjust_balance(
    modeladmin: "AccountAdmin", request: HttpRequest, queryset: QuerySet[Account]
) -> TemplateResponse | None:
    form = AdjustmentForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        for account in queryset:
            ledger.post(
                account_id=account.pk,
                amount=form.cleaned_data["amount"],
                kind=LedgerEntry.ADJUSTMENT,
                idempotency_key=f"admin:{uuid.uuid4().hex}",
                reason=form.cleaned_data["reason"],
                created_by=cast("User", request.user),  # the admin site admits signed-in staff only
            )
        modeladmin.message_user(request, f"Adjusted {queryset.count()} account(s).", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "form": form,
        "accounts": queryset,
        "action": "adjust_balance",
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/billing/adjust_balance.html", context)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "held", "available", "updated_at"]
    search_fields = ["user__email"]
    actions = [adjust_balance]
    readonly_fields = ["user", "balance", "held", "updated_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.is_superuser  # lets the changelist run actions, no edit form


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "amount", "captured", "status", "purpose", "request_id", "created_at"]
    list_filter = ["status", "purpose"]
    search_fields = ["request_id", "idempotency_key", "account__user__email"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "account",
        "kind",
        "amount",
        "held_delta",
        "balance_after",
        "shortfall",
        "reason",
    ]
    list_filter = ["kind"]
    search_fields = ["idempotency_key", "account__user__email", "reason"]


@admin.register(Loss)
class LossAdmin(ReadOnlyAdmin):
    """What vendors billed above a request's hold and the balance behind it: the platform's loss.
    Should stay empty (holds bound the bill); an entry here names the request and the hold."""

    list_display = ["id", "created_at", "account", "shortfall", "hold", "reason"]
    search_fields = ["account__user__email", "reason", "idempotency_key"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        from django.db.models import Sum

        total = Loss.objects.aggregate(s=Sum("shortfall"))["s"]
        return super().changelist_view(
            request, {**(extra_context or {}), "title": f"Losses (total {format_usd(total)})"}
        )


@admin.register(KeySpend)
class KeySpendAdmin(ReadOnlyAdmin):
    list_display = ["key_id", "month", "spent", "held"]


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


@admin.action(description="Refund what is left through the top-up's rail")
def refund_through_rail(modeladmin: "TopUpAdmin", request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
    from .refunds import NothingToRefund, refund_remaining
    from .stripe_topups import PaymentProviderError

    for topup in queryset:
        try:
            amount = refund_remaining(topup)
        except (NothingToRefund, PaymentProviderError) as exc:
            modeladmin.message_user(request, f"{topup.session_id}: {exc}", messages.WARNING)
        else:
            modeladmin.message_user(request, f"{topup.session_id}: refunded ${amount}", messages.SUCCESS)


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    actions = [refund_through_rail]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and request.user.is_superuser  # lets the changelist run the refund action

    list_display = [
        "created_at",
        "user",
        "rail",
        "amount",
        "credited",
        "status",
        "refunded",
        "disputed",
        "session_id",
        "paid_at",
    ]
    list_filter = ["rail", "status"]
    search_fields = ["session_id", "payment_intent", "user__email"]
    date_hierarchy = "created_at"


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "event_id", "type", "status", "object_id", "livemode", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["event_id", "object_id"]
    readonly_fields = [
        "event_id",
        "type",
        "livemode",
        "object_id",
        "payload",
        "status",
        "error",
        "received_at",
        "processed_at",
    ]


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "rail", "event_id", "type", "status", "object_id", "processed_at"]
    list_filter = ["rail", "status", "type"]
    search_fields = ["event_id", "object_id"]
    readonly_fields = [
        "rail",
        "event_id",
        "type",
        "object_id",
        "payload",
        "status",
        "error",
        "received_at",
        "processed_at",
    ]
