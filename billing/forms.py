"""Forms of the billing and usage pages."""

from decimal import Decimal

from django import forms
from django.conf import settings

from accounts.keys import DASHBOARD_KEY_NAME

from .usage_stats import RANGES, STATUSES


class TopUpForm(forms.Form):
    """A preset button posts `amount`; the custom field posts the same name. `rail` picks one of the
    configured rails (the first when absent)."""

    amount = forms.DecimalField(max_digits=7, decimal_places=2, label="Amount (USD)")
    rail = forms.ChoiceField(required=False, choices=[])

    def __init__(self, *args, rails=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.rail_names = [rail.name for rail in rails]
        self.fields["rail"].choices = [(name, name) for name in self.rail_names]

    def clean_rail(self) -> str:
        return self.cleaned_data.get("rail") or (self.rail_names[0] if self.rail_names else "")

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
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

    def __init__(self, data, *, models: list[str], keys):
        super().__init__(data)
        for field in self.fields.values():
            field.widget.attrs["data-filter"] = ""  # what the period buttons carry along
        self.fields["model"].choices = [("", "All models")] + [(m, m) for m in models]
        self.fields["key"].choices = [("", "All keys")] + [
            (
                k.pk,
                k.name
                if k.name == DASHBOARD_KEY_NAME
                else f"{k.name} ({k.display})" + (" · revoked" if k.is_revoked else ""),
            )
            for k in keys
        ]

    def filters(self) -> dict:
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


def chart_range(value) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        return 30
    return days if days in RANGES else 30
