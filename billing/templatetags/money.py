"""`{{ amount|usd }}` (exact, at least cents) and `{{ amount|usd:2 }}` in every template: the one money
formatter (billing.money.format_usd), registered as a template builtin in settings."""

from decimal import Decimal

from django import template

from billing.money import format_usd

register = template.Library()


@register.filter(name="usd")
def usd_filter(value: Decimal | int | float | str | None, places: int | str | None = None) -> str:
    if value is None or value == "":
        return ""
    return format_usd(value, None if places in (None, "") else int(places))
