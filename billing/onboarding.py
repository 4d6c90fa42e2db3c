"""The overview's onboarding card: the first steps of a new account, each ticked when done."""

from dataclasses import dataclass, replace

from django.urls import reverse

from accounts.keys import user_keys
from accounts.models import User

from .models import Account, LedgerEntry
from .money import format_usd


@dataclass(frozen=True)
class Step:
    title: str
    detail: str
    url: str
    action: str
    done: bool
    next: bool = False  # the first step not done yet: its button is the primary one


def steps(user: User, account: Account) -> list[Step] | None:
    """Create a key, have money, make a first request; None once all three are done."""
    has_key = user_keys(user).filter(revoked_at__isnull=True).exists()
    credited = LedgerEntry.objects.filter(account=account, idempotency_key=f"signup-credit:{user.pk}").first()
    has_money = account.balance > 0
    used = user.usage_logs.exists()
    if has_key and has_money and used:
        return None
    money_detail = (
        f"Your {format_usd(credited.amount, 2)} sign-up credit is ready to spend."
        if credited
        else "Your balance is $0: requests are refused until you add funds."
    )
    todo = [
        Step(
            "Create an API key",
            "Name it after where it will live: laptop, CI, production.",
            reverse("key-create"),
            "Create a key",
            has_key,
        ),
        Step("Add funds", money_detail, reverse("billing"), "Add funds", has_money),
        Step(
            "Make a first request",
            "Try a model in the chat playground, or paste a snippet from the quick start.",
            reverse("chat"),
            "Open the chat",
            used,
        ),
    ]
    first = next(i for i, step in enumerate(todo) if not step.done)
    todo[first] = replace(todo[first], next=True)
    return todo
