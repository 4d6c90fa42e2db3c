"""The sign-up credit: SIGNUP_CREDIT_USD (default 0) added to every new account, once."""

from typing import Any

from django.conf import settings

from accounts.models import User

from . import ledger
from .models import LedgerEntry


def credit_new_user(sender: object, *, user: User, **kwargs: Any) -> LedgerEntry | None:
    """Credit a new user's account through the ledger; the key per user makes it happen at most once."""
    amount = settings.SIGNUP_CREDIT_USD
    if amount <= 0:
        return None
    account = ledger.account_for_user(user.pk)
    return ledger.post(
        account_id=account.pk,
        amount=amount,
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key=f"signup-credit:{user.pk}",
        reason="sign-up credit",
    )
