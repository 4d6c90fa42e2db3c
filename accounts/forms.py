"""Forms of the account and API-key pages."""

import re
import zoneinfo
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from . import throttle
from .keys import DASHBOARD_KEY_NAME
from .models import User

MODEL_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
MAX_ALLOWED_MODELS = 100
MAX_RPM = 100_000
TIME_ZONES = sorted(zoneinfo.available_timezones())


def _valid_zone(name: str) -> str:
    if name not in zoneinfo.available_timezones():
        raise forms.ValidationError("Unknown time zone.")
    return name


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password.",
    )
    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Log in instead.")
        return email

    def clean_time_zone(self):
        name = self.cleaned_data.get("time_zone") or "UTC"
        return (
            name if name in zoneinfo.available_timezones() else "UTC"
        )  # detected by the browser; best effort

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("email"):
            try:
                password_validation.validate_password(data["password"], User(email=data["email"]))
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, refused for an (email, IP) pair that failed too often recently."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account.",
        "throttled": "Too many failed sign-in attempts for this email from your network. "
        "Try again in %(minutes)s minute(s), or reset your password.",
    }

    def clean(self):
        email = (self.cleaned_data.get("username") or "").strip().lower()
        ip = throttle.client_ip(self.request)
        wait = throttle.blocked_for(email, ip)
        if wait:
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": max(1, -(-wait // 60))}
            )
        try:
            data = super().clean()
        except forms.ValidationError:
            throttle.record_failure(email, ip)
            raise
        throttle.clear(email, ip)
        return data


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=[(z, z) for z in TIME_ZONES])

    class Meta:
        model = User
        fields = ["name", "time_zone"]

    def clean_time_zone(self):
        return _valid_zone(self.cleaned_data["time_zone"])


class KeyForm(forms.Form):
    """Name and limits of an API key (creating one, or editing a live one)."""

    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. laptop, CI, production", "autocomplete": "off"}),
    )
    rpm = forms.IntegerField(
        label="Requests per minute",
        min_value=1,
        max_value=MAX_RPM,
        required=False,
        help_text="Empty for the default.",
        widget=forms.NumberInput(attrs={"placeholder": str(settings.GPUNIQ_DEFAULT_RPM)}),
    )
    monthly_spend_cap_usd = forms.DecimalField(
        label="Monthly spend cap (USD)",
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        help_text="Empty for no cap.",
        widget=forms.NumberInput(attrs={"placeholder": "No cap", "step": "0.01"}),
    )
    allowed_models = forms.CharField(
        required=False,
        max_length=5000,
        help_text="Comma-separated model slugs; empty allows every model.",
        widget=forms.TextInput(
            attrs={
                "placeholder": "e.g. claude-haiku-4-5, gpt-5.2",
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        if name == DASHBOARD_KEY_NAME:
            raise forms.ValidationError("This name is reserved for the dashboard's own key.")
        return name

    def clean_rpm(self):
        return self.cleaned_data.get("rpm") or settings.GPUNIQ_DEFAULT_RPM

    def clean_allowed_models(self) -> list[str]:
        slugs = [
            s.strip() for s in re.split(r"[,\s]+", self.cleaned_data.get("allowed_models") or "") if s.strip()
        ]
        bad = [s for s in slugs if not MODEL_SLUG.match(s)]
        if bad:
            raise forms.ValidationError(f"Not a model slug: {', '.join(bad[:3])}")
        if len(slugs) > MAX_ALLOWED_MODELS:
            raise forms.ValidationError(f"At most {MAX_ALLOWED_MODELS} models.")
        return list(dict.fromkeys(slugs))

    @classmethod
    def for_key(cls, key, data=None):
        cap = key.monthly_spend_cap_usd
        initial = {
            "name": key.name,
            "rpm": key.rpm,
            "monthly_spend_cap_usd": cap.quantize(Decimal("0.01")) if cap is not None else None,
            "allowed_models": ", ".join(key.allowed_models or []),
        }
        return cls(data, initial=initial, prefix=f"k{key.pk}")
