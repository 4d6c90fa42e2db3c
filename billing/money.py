"""USD amounts: Decimal with 8 places, never float."""

from decimal import ROUND_HALF_UP, Decimal

CENT_MILLIONTH = Decimal("0.00000001")
ZERO = Decimal("0")


def usd(value) -> Decimal:
    """Quantise to 1e-8 USD, rounding half up (the documented rounding rule for every price)."""
    if isinstance(value, float):
        value = repr(value)  # exact decimal text of the float's shortest repr, not its binary expansion
    return Decimal(value).quantize(CENT_MILLIONTH, rounding=ROUND_HALF_UP)


def usd_float(value: Decimal) -> float:
    """For JSON output only: the docs' clients read cost_usd / balance_usd as numbers."""
    return float(value)
