"""Money: one USD account per user, holds on it, an append-only ledger, top-ups, and usage rows.

Invariants (checked by `manage.py check_ledger`):
- account.balance == sum(entry.amount) and account.held == sum(entry.held_delta) over its entries;
- account.held == sum of its open holds; 0 <= held <= balance, except after a refund or a lost
  dispute took back money already spent: only those debits may leave balance below held or zero.
Account, hold and ledger rows change only through billing/ledger.py; usage rows (UsageLog) are
appended by billing/metering.py alone.
"""

import uuid
from decimal import Decimal
from typing import Any, ClassVar, TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Q

from .money import format_usd


class DecimalDigits(TypedDict):
    max_digits: int
    decimal_places: int


USD: DecimalDigits = {"max_digits": 20, "decimal_places": 8}
ZERO = Decimal("0")
# Holds taken for a job row: the job owns them until its completion is charged or the job is
# discarded, and the job's reaper closes them; the generic stale-hold sweep never does.
JOB_PURPOSES = ("chat_job", "image_job", "video_job")

# References the database does not check on each write (db_constraint=False). Every statement that
# writes these rows takes them from rows it has just locked or written itself (billing/pg_ledger.py,
# billing/ledger_orm.py), and a foreign-key check per row was about a seventh of PostgreSQL's CPU per
# paid request (docs/performance.md). The ORM still applies their on_delete (PROTECT), and
# `check_ledger` reports any row that points at nothing (ledger.find_orphans).
STRUCTURAL_REFERENCES = (("Hold", "account"), ("LedgerEntry", "account"), ("LedgerEntry", "hold"))


class Account(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account")
    balance = models.DecimalField(**USD, default=ZERO, help_text="USD owned, including held amounts")
    held = models.DecimalField(**USD, default=ZERO, help_text="USD reserved by in-flight requests and jobs")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # balance >= held is the ledger's rule for every operation but a refund or dispute debit,
        # which takes back money already spent even while some is held (billing/ledger.py)
        constraints = [models.CheckConstraint(condition=Q(held__gte=0), name="account_held_not_negative")]

    def __str__(self) -> str:
        return f"{self.user} {format_usd(self.balance)}"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


STALE_SWEEP = "stale"  # the sweep of every hold but a job's (billing/hold_sweep.py)


def job_sweep(purpose: str) -> str:
    """The sweep of one job purpose's holds."""
    return f"job:{purpose}"


class HoldManager(models.Manager["Hold"]):
    def of_sweep(self, kind: str) -> "models.QuerySet[Hold]":
        """The holds a sweep of `kind` reads: a job purpose's by the small `hold_job` index."""
        if kind == STALE_SWEEP:
            return self.exclude(purpose__in=JOB_PURPOSES)
        purpose = kind.removeprefix("job:")
        if purpose not in JOB_PURPOSES:
            raise ValueError(f"no sweep of kind {kind!r}")
        return self.filter(purpose=purpose)

    def open_of_sweep(self, kind: str, below: int) -> "models.QuerySet[Hold]":
        """The open holds of a sweep's kind from its mark `below` on (every one below it is closed)."""
        return self.of_sweep(kind).filter(pk__gte=below, status=Hold.OPEN)

    def count_open(self) -> int:
        """How many holds are open, each kind read from its sweep's mark on: there is no index on
        the status (billing/hold_sweep.py says why)."""
        marks = dict(SweepMark.objects.values_list("name", "below"))
        kinds = (STALE_SWEEP, *map(job_sweep, JOB_PURPOSES))
        return sum(self.open_of_sweep(kind, marks.get(kind, 0)).count() for kind in kinds)


class Hold(models.Model):
    """A reservation of worst-case cost; ends exactly once as settled or released."""

    OPEN, SETTLED, RELEASED = "open", "settled", "released"
    STATUSES = [(OPEN, "open"), (SETTLED, "settled"), (RELEASED, "released")]
    JOB_PURPOSES = JOB_PURPOSES

    # No foreign-key constraint in the database (STRUCTURAL_REFERENCES): the one statement that
    # writes a hold takes its account from the account row it has just locked and updated.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds", db_constraint=False)
    amount = models.DecimalField(**USD)
    status = models.CharField(max_length=10, choices=STATUSES, default=OPEN)
    captured = models.DecimalField(**USD, default=ZERO)
    idempotency_key = models.CharField(max_length=200)
    api_key_id = models.BigIntegerField(
        null=True, blank=True, help_text="the capped API key whose monthly spend this hold counts toward"
    )
    purpose = models.CharField(max_length=40, default="chat")
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = HoldManager()

    class Meta:
        # No index holds a column that closing a hold changes (status, captured, closed_at), so the
        # settle's update of the hold is HOT: no new index entries (the table's fillfactor leaves room
        # on the page, migration 0007). Open holds are found from the sweep marks instead
        # (billing/hold_sweep.py); job holds, which can stay open for long, through this small index.
        indexes = [models.Index(fields=["id"], condition=Q(purpose__in=JOB_PURPOSES), name="hold_job")]
        # a constraint, not unique=True: on PostgreSQL that would add a second (pattern) index
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="hold_idempotency_key")]

    def __str__(self) -> str:
        return f"hold {self.pk} {format_usd(self.amount)} {self.status}"


class SweepMark(models.Model):
    """How far a sweep of open holds has come (billing/hold_sweep.py): every hold of its kind with an
    id below `below` is closed, so the sweep, and the count of open holds, start there."""

    name = models.CharField(max_length=40, primary_key=True)
    below = models.BigIntegerField(default=0)
    seen_top = models.BigIntegerField(default=0, help_text="the highest hold id when the last sweep began")
    seen_at = models.DateTimeField(null=True, blank=True, help_text="when the last sweep began")

    def __str__(self) -> str:
        return f"{self.name}: holds below {self.below} closed"


class LedgerEntry(models.Model):
    """One immutable line of money history. Never updated or deleted; corrections are new entries."""

    TOPUP, HOLD, CHARGE, RELEASE, REFUND, ADJUSTMENT = (
        "topup",
        "hold",
        "charge",
        "release",
        "refund",
        "adjustment",
    )
    DISPUTE = "dispute"  # a chargeback debit (negative) or a won dispute's re-credit (positive)
    LOSS = "loss"  # a vendor bill above what the hold and balance covered: `shortfall` USD the platform lost
    KINDS = [(k, k) for k in (TOPUP, HOLD, CHARGE, RELEASE, REFUND, ADJUSTMENT, DISPUTE, LOSS)]

    # Neither reference is a constraint in the database (STRUCTURAL_REFERENCES): every statement
    # that writes an entry takes them from the account row it has locked and the hold it has just
    # written or closed. ledger_account_recent covers the account.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    kind = models.CharField(max_length=12, choices=KINDS)
    amount = models.DecimalField(**USD, help_text="change to the balance")
    held_delta = models.DecimalField(**USD, default=ZERO, help_text="change to the held amount")
    shortfall = models.DecimalField(
        **USD,
        default=ZERO,
        db_default=ZERO,
        help_text="loss entries: USD billed by the vendor that nobody paid",
    )
    balance_after = models.DecimalField(**USD)
    held_after = models.DecimalField(**USD)
    idempotency_key = models.CharField(max_length=200)
    hold = models.ForeignKey(
        Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_constraint=False
    )
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # ledger_created_by: only the operators' entries have one
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["account", "-id"], name="ledger_account_recent"),
            models.Index(
                fields=["created_by"], condition=Q(created_by__isnull=False), name="ledger_created_by"
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="ledger_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.idempotency_key})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("ledger entries are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("ledger entries are immutable")


class LossManager(models.Manager["Loss"]):
    def get_queryset(self) -> models.QuerySet["Loss"]:
        return super().get_queryset().filter(kind=LedgerEntry.LOSS)


class Loss(LedgerEntry):
    """The loss entries of the ledger, for operators (the admin's Losses page and metrics)."""

    objects: ClassVar[LossManager] = LossManager()

    class Meta:
        proxy = True
        verbose_name_plural = "losses"


class KeySpend(models.Model):
    """One capped API key's money this month: settled spend and what its open holds reserve.

    The monthly cap is checked against spent + held in the same locked statement that takes a
    hold, so concurrent requests over any number of processes cannot overshoot it. Rows exist
    for keys that have (or had) a cap; `spent` starts again at 0 when `month` changes. Changed
    only by billing/ledger.py, together with the hold or settle it belongs to.
    """

    key_id = models.BigIntegerField(primary_key=True)
    month = models.DateField(help_text="first day (UTC) of the month `spent` counts")
    spent = models.DecimalField(**USD, default=ZERO)
    held = models.DecimalField(**USD, default=ZERO)

    def __str__(self) -> str:
        return f"key {self.key_id}: ${self.spent} spent, ${self.held} held since {self.month}"


class TopUp(models.Model):
    """One top-up through one payment rail (Stripe Checkout, YooKassa, BTCPay Server), keyed by the
    rail's own id for it (`session_id`: a Checkout Session, a YooKassa payment, a BTCPay invoice).
    The money lives in the ledger.

    Status: pending → paid | failed | cancelled | expired; paid → refunded once the rail has refunded
    all of it. Only the rail's event module (billing/stripe_events.py, yookassa_rail.py,
    btcpay_rail.py) changes a top-up, through billing/topup_ops.py: conditional updates, and every
    credit or debit is a ledger entry keyed by the rail's id, so replayed or reordered events can
    never move money twice.
    """

    PENDING, PAID, FAILED, REFUNDED = "pending", "paid", "failed", "refunded"
    CANCELLED, EXPIRED = "cancelled", "expired"
    STATUSES = [(s, s) for s in (PENDING, PAID, FAILED, REFUNDED, CANCELLED, EXPIRED)]
    OPEN_STATUSES = (PENDING, FAILED, CANCELLED, EXPIRED)  # nothing credited yet; a late payment still counts
    STRIPE, YOOKASSA, BTCPAY = "stripe", "yookassa", "btcpay"
    RAILS = [(STRIPE, "Stripe"), (YOOKASSA, "YooKassa"), (BTCPAY, "Crypto (BTCPay)")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="topups")
    rail = models.CharField(max_length=10, choices=RAILS, default=STRIPE)
    session_id = models.CharField(max_length=255, unique=True, help_text="the rail's id for this payment")
    ref = models.UUIDField(
        default=uuid.uuid4,
        editable=False,
        unique=True,
        help_text="our own reference: return URLs and the receipt",
    )
    amount = models.DecimalField(
        **USD, help_text="USD asked for at checkout (credited: what the rail collected)"
    )
    currency = models.CharField(max_length=3, default="usd", help_text="the currency the buyer pays in")
    pay_amount = models.DecimalField(
        **USD, null=True, blank=True, help_text="what the buyer pays, in `currency` (YooKassa: RUB)"
    )
    rate = models.DecimalField(
        **USD,
        null=True,
        blank=True,
        help_text="units of `currency` per USD, fixed when the payment was created",
    )
    credited = models.DecimalField(**USD, default=ZERO, help_text="USD credited so far")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    refunded = models.DecimalField(**USD, default=ZERO, help_text="USD refunded so far")
    disputed = models.DecimalField(
        **USD, default=ZERO, help_text="USD taken back by a dispute still lost/open"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "top-up"
        indexes = [models.Index(fields=["user", "-created_at"], name="topup_user_recent")]

    def __str__(self) -> str:
        return f"{self.rail} top-up {self.session_id} {format_usd(self.amount)} {self.status}"


class PaymentEvent(models.Model):
    """A YooKassa notification or BTCPay webhook, recorded under (rail, event id) before it is handled.

    YooKassa notifications carry no id of their own: the id is "<event>:<object id>", so the same
    notification for the same payment or refund is one row. BTCPay's is the original delivery id,
    so a redelivery is a duplicate. Only the status, error and processed_at ever change.
    """

    RECEIVED, PROCESSED, FAILED, IGNORED = "received", "processed", "failed", "ignored"
    STATUSES = [(s, s) for s in (RECEIVED, PROCESSED, FAILED, IGNORED)]

    rail = models.CharField(max_length=10, choices=TopUp.RAILS)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=255, blank=True, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=STATUSES, default=RECEIVED)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["rail", "event_id"], name="payment_event_rail_id")]

    def __str__(self) -> str:
        return f"{self.rail} {self.type} {self.event_id} ({self.status})"


class StripeEvent(models.Model):
    """A Stripe webhook event, recorded under its unique event id before it is handled.

    The unique id (not an exists() check) is what stops a duplicate delivery; the row keeps the
    payload and how handling went. Only the status, error and processed_at ever change.
    """

    RECEIVED, PROCESSED, FAILED, IGNORED = "received", "processed", "failed", "ignored"
    STATUSES = [(s, s) for s in (RECEIVED, PROCESSED, FAILED, IGNORED)]

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    object_id = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="the event's data.object id (session, charge)"
    )
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=STATUSES, default=RECEIVED)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "Stripe event"

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


class UsageLog(models.Model):
    """One row per API request or job, paid, refused or failed. Append-only, written by
    billing/metering.py alone. The table keeps its first name, llm_usagelog: the model moved from
    llm to billing without moving data (migrations llm 0006 and billing 0006)."""

    # every index here is paid for on each API request: no pattern index for request_id, and the
    # user's own index is the prefix of usage_user_recent
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_logs", db_index=False
    )
    api_key = models.ForeignKey(
        "accounts.APIKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_logs"
    )
    request_id = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=40, default="chat")
    model = models.CharField(max_length=100)
    route = models.CharField(max_length=250, blank=True, help_text="operator-only: provider:upstream_model")
    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    video_seconds = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(**USD, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, default="ok")
    error_code = models.CharField(max_length=50, blank=True)
    stream = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "llm_usagelog"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="usage_user_recent"),
            models.Index(fields=["user", "model", "created_at"], name="usage_user_model_time"),
            models.Index(fields=["request_id"], name="usage_request"),
        ]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
