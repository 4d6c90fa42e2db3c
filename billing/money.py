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


def format_usd(value) -> str:
    """Money as people read it, without the currency sign: at least cents, at most the 8 places
    the ledger keeps, never an exponent (0E-8 → "0.00", 0.00123400 → "0.001234", 12.5 → "12.50")."""
    text = f"{usd(value):f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
