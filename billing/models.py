"""Money: one USD account per user, holds on it, and an append-only ledger.

Invariants (checked by `manage.py check_ledger`):
- account.balance == sum(entry.amount) and account.held == sum(entry.held_delta) over its entries;
- account.held == sum of its open holds; 0 <= held <= balance.
Rows here change only through billing/ledger.py.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

USD = dict(max_digits=20, decimal_places=8)
ZERO = Decimal("0")


class Account(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account")
    balance = models.DecimalField(**USD, default=ZERO, help_text="USD owned, including held amounts")
    held = models.DecimalField(**USD, default=ZERO, help_text="USD reserved by in-flight requests and jobs")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(held__gte=0), name="account_held_not_negative"),
            models.CheckConstraint(condition=Q(balance__gte=F("held")), name="account_balance_covers_held"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ${self.balance}"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


class Hold(models.Model):
    """A reservation of worst-case cost; ends exactly once as settled or released."""

    OPEN, SETTLED, RELEASED = "open", "settled", "released"
    STATUSES = [(OPEN, "open"), (SETTLED, "settled"), (RELEASED, "released")]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    amount = models.DecimalField(**USD)
    status = models.CharField(max_length=10, choices=STATUSES, default=OPEN)
    captured = models.DecimalField(**USD, default=ZERO)
    idempotency_key = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=40, default="chat")
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="hold_status_created")]

    def __str__(self) -> str:
        return f"hold {self.pk} ${self.amount} {self.status}"


class LedgerEntry(models.Model):
    """One immutable line of money history. Never updated or deleted; corrections are new entries."""

    TOPUP, HOLD, CHARGE, RELEASE, REFUND, ADJUSTMENT = "topup", "hold", "charge", "release", "refund", "adjustment"
    KINDS = [(k, k) for k in (TOPUP, HOLD, CHARGE, RELEASE, REFUND, ADJUSTMENT)]

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=KINDS)
    amount = models.DecimalField(**USD, help_text="change to the balance")
    held_delta = models.DecimalField(**USD, default=ZERO, help_text="change to the held amount")
    balance_after = models.DecimalField(**USD)
    held_after = models.DecimalField(**USD)
    idempotency_key = models.CharField(max_length=200, unique=True)
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries")
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["account", "-id"], name="ledger_account_recent")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.idempotency_key})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("ledger entries are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ledger entries are immutable")
