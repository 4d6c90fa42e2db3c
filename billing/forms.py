"""Forms of the billing and usage pages."""

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.http import QueryDict

from accounts.keys import DASHBOARD_KEY_NAME
from accounts.models import APIKey

from .usage_stats import RANGES, STATUSES

if TYPE_CHECKING:
    from .rails import Rail


def _choice(form: forms.Form, name: str) -> forms.ChoiceField:
    """A field the form class declares as a ChoiceField (self.fields holds copies of them)."""
    return cast(forms.ChoiceField, form.fields[name])


class TopUpForm(forms.Form):
    """A preset button posts `amount`; the custom field posts the same name. `rail` picks one of the
    configured rails (the first when absent)."""

    amount = forms.DecimalField(max_digits=7, decimal_places=2, label="Amount (USD)")
    rail = forms.ChoiceField(required=False, choices=[])

    def __init__(self, *args: Any, rails: Iterable["Rail"] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rail_names = [rail.name for rail in rails]
        _choice(self, "rail").choices = [(name, name) for name in self.rail_names]

    def clean_rail(self) -> str:
        return self.cleaned_data.get("rail") or (self.rail_names[0] if self.rail_names else "")

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        low, high = settings.TOPUP_MIN_USD, settings.TOPUP_MAX_USD
        if not low <= amount <= high:
            raise forms.ValidationError(f"Choose an amount between ${low:,} and ${high:,}.")
        return amount.quantize(Decimal("0.01"))


class UsageFilterForm(forms.Form):
    """Filters of the recent-requests table (and the CSV export). Unknown values are ignored."""

    model = forms.ChoiceField(required=False)
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + [(s, s) for s in STATUSES])
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data: QueryDict, *, models: list[str], keys: Iterable[APIKey]) -> None:
        super().__init__(data)
        for field in self.fields.values():
            field.widget.attrs["data-filter"] = ""  # what the period buttons carry along
        _choice(self, "model").choices = [("", "All models")] + [(m, m) for m in models]
        _choice(self, "key").choices = [("", "All keys")] + [
            (
                k.pk,
                k.name
                if k.name == DASHBOARD_KEY_NAME
                else f"{k.name} ({k.display})" + (" · revoked" if k.is_revoked else ""),
            )
            for k in keys
        ]

    def filters(self) -> dict[str, Any]:
        """Valid filters only: a stale bookmark with a deleted key still shows the rest."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "model": data.get("model") or "",
            "key_id": data.get("key"),
            "status": data.get("status") or "",
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


def chart_range(value: str | None) -> int:
    try:
        days = int(value or "")
    except (TypeError, ValueError):
        return 30
    return days if days in RANGES else 30
