"""The money engine's specification: what each operation is asked, and every answer it can give.

Two storage adapters implement it — billing/ledger_orm.py (the ORM, any database; the embedded
SQLite default) and billing/pg_ledger.py + billing/pg_async.py (PostgreSQL statements for the hot
path) — and tests/test_ledger_differential.py replays generated operation sequences on both and
requires the same outcomes and the same rows.

The rules, for both adapters:
- hold(amount >= 0): taken only while balance - held covers it and, for a key with a monthly cap,
  while the key's settled spend this month + its open holds + amount stays within the cap, both
  checked under the account's row lock in the same transaction that takes the hold. A repeated
  idempotency key returns the existing hold and checks nothing.
- close(hold, actual): once per hold. actual < 0 counts as 0. Up to the hold's amount the charge
  is the actual cost; above it the excess is charged while the account's available balance covers
  it, and the rest is a `loss` entry (shortfall) in the same transaction. A charge of 0 is a
  release. A hold closed before answers AlreadyClosed with what it captured.
- post(): top-ups and re-credits add; refund and dispute debits take their full amount (the only
  way a balance goes below held or zero); adjustment debits stop at what is available.
"""

from dataclasses import dataclass
from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal


@dataclass(frozen=True)
class HoldRequest:
    account_id: int
    amount: Decimal
    key: str
    purpose: str = "chat"
    request_id: str = ""
    api_key_id: int | None = None
    cap: Decimal | None = None  # the key's monthly spend cap, None = no cap

    def __post_init__(self) -> None:
        if self.cap is not None and self.api_key_id is None:
            raise ValueError("a spend cap belongs to an API key: api_key_id is required with cap")


@dataclass(frozen=True)
class HoldRef:
    """What a paid path keeps between hold and settle."""

    id: int
    account_id: int
    amount: Decimal


@dataclass(frozen=True)
class Refused:
    reason: str  # "balance" or "cap"
    available: Decimal  # balance - held, or what the cap still allows


@dataclass(frozen=True)
class Closed:
    """The hold closed now: `charged` taken from the balance, `shortfall` recorded as a loss."""

    charged: Decimal
    shortfall: Decimal
    available: Decimal | None = None  # balance - held after, where the adapter read it


@dataclass(frozen=True)
class AlreadyClosed:
    """The hold was closed before (by another caller, a reaper, or an earlier attempt)."""

    captured: Decimal
    available: Decimal | None = None


CloseOutcome = Closed | AlreadyClosed


class HoldLost(Exception):
    """The hold to settle is not in the database: it was taken without waiting for the disk
    (billing.pg_ledger.NO_FLUSH) and PostgreSQL lost it in a crash. Nothing was charged, so the
    caller must not deliver what the hold was for."""

    def __init__(self, hold_id: int):
        self.hold_id = hold_id
        super().__init__(f"hold {hold_id} is not in the database (lost in a crash of PostgreSQL?)")


class InsufficientBalance(Exception):
    def __init__(self, required: Decimal, available: Decimal):
        self.required = required
        self.available = available
        super().__init__(f"required {required}, available {available}")


class SpendCapReached(Exception):
    def __init__(self, required: Decimal, left: Decimal):
        self.required = required
        self.left = left
        super().__init__(f"required {required}, left under the cap {left}")


def refusal_error(request: HoldRequest, refused: Refused) -> Exception:
    if refused.reason == "cap":
        return SpendCapReached(request.amount, refused.available)
    return InsufficientBalance(request.amount, refused.available)


def month_start(now: datetime | None = None) -> date:
    """The first day (UTC) of the month a key's spend counts toward."""
    now = now or datetime.now(dt_timezone.utc)
    return now.astimezone(dt_timezone.utc).date().replace(day=1)
