"""USD amounts: Decimal with 8 places, never float."""

from decimal import ROUND_HALF_UP, Decimal

Amount = Decimal | int | float | str  # what usd() takes: floats by their shortest repr

CENT_MILLIONTH = Decimal("0.00000001")
ZERO = Decimal("0")


def usd(value: Amount) -> Decimal:
    """Quantise to 1e-8 USD, rounding half up (the documented rounding rule for every price)."""
    if isinstance(value, float):
        value = repr(value)  # exact decimal text of the float's shortest repr, not its binary expansion
    return Decimal(value).quantize(CENT_MILLIONTH, rounding=ROUND_HALF_UP)


def usd_float(value: Decimal) -> float:
    """For JSON output only: the docs' clients read cost_usd / balance_usd as numbers."""
    return float(value)


def format_usd(value: Amount | None, places: int | None = None) -> str:
    """Money as people read it — the one formatter for every message, page and label.

    places=None: exact to 1e-8 USD, trailing zeros dropped, at least cents ("$0.00", "$1.26",
    "$0.0018", "$1,234.50"); places=N: rounded half up to N places ("$5.00"). Negative amounts
    read "-$0.50". Never scientific notation (Decimal("0E-8") is "$0.00").
    """
    amount = usd(value if value is not None else 0)
    if places is not None:
        amount = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    else:
        amount = amount.normalize()
        exponent = amount.as_tuple().exponent  # a letter only for NaN and infinity
        if isinstance(exponent, int) and exponent > -2:
            amount = amount.quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,f}"
