"""The ledger's PostgreSQL path: hold and settle/release are ONE statement each.

Each statement locks the account row, changes the cached balance, writes the hold and the
ledger entry, and commits on its own (autocommit), so a paid request costs two database round
trips in all. The same SQL serves sync callers (Django's connection) and the async hot path
(a psycopg pool on the event loop, no thread hop). Semantics match billing/ledger.py exactly;
the SQLite path there remains the reference, and the ledger tests run against both.
"""

from decimal import Decimal

from .money import ZERO, usd

# The WHERE clause is the guarantee: held grows only while balance - held covers the amount.
HOLD_SQL = """
WITH acc AS (
  UPDATE billing_account SET held = held + %(amount)s, updated_at = now()
  WHERE id = %(account)s AND balance - held >= %(amount)s
  RETURNING id, balance, held
), h AS (
  INSERT INTO billing_hold (account_id, amount, status, captured, idempotency_key, purpose, request_id, created_at)
  SELECT id, %(amount)s, 'open', 0, %(key)s, %(purpose)s, %(request_id)s, now() FROM acc
  RETURNING id
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT acc.id, 'hold', 0, %(amount)s, acc.balance, acc.held, 'hold:' || %(key)s, h.id, %(purpose)s, now()
  FROM acc, h
)
SELECT h.id FROM h
"""

AVAILABLE_SQL = "SELECT balance - held FROM billing_account WHERE id = %(account)s"

# Locks the account first (the order every writer uses), then closes the hold once: the charge is
# the actual cost, capped by what the account can pay; a zero charge is a release.
SETTLE_SQL = """
WITH a AS (
  SELECT id, balance, held FROM billing_account
  WHERE id = (SELECT account_id FROM billing_hold WHERE id = %(hold)s) FOR UPDATE
), h AS (
  UPDATE billing_hold
  SET captured = LEAST(%(actual)s, billing_hold.amount + a.balance - a.held),
      status = CASE WHEN LEAST(%(actual)s, billing_hold.amount + a.balance - a.held) > 0
                    THEN 'settled' ELSE 'released' END,
      closed_at = now()
  FROM a WHERE billing_hold.id = %(hold)s AND billing_hold.status = 'open'
  RETURNING billing_hold.id, billing_hold.account_id, billing_hold.amount, billing_hold.captured,
            billing_hold.idempotency_key
), acc AS (
  UPDATE billing_account SET balance = billing_account.balance - h.captured,
                             held = billing_account.held - h.amount, updated_at = now()
  FROM h WHERE billing_account.id = h.account_id
  RETURNING billing_account.id, billing_account.balance, billing_account.held
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT acc.id, CASE WHEN h.captured > 0 THEN 'charge' ELSE 'release' END, -h.captured, -h.amount,
         acc.balance, acc.held,
         CASE WHEN h.captured > 0 THEN 'settle:' ELSE 'release:' END || h.idempotency_key, h.id, %(reason)s, now()
  FROM acc, h
)
SELECT (SELECT captured FROM h), COALESCE((SELECT balance - held FROM acc), (SELECT balance - held FROM a))
"""


CLOSED_HOLD_SQL = """
SELECT h.captured, a.balance - a.held FROM billing_hold h JOIN billing_account a ON a.id = h.account_id
WHERE h.id = %(hold)s AND h.status <> 'open'
"""


def hold_params(*, account_id: int, amount: Decimal, key: str, purpose: str, request_id: str) -> dict:
    return {"account": account_id, "amount": amount, "key": key, "purpose": purpose, "request_id": request_id}


def settle_params(*, hold_id: int, actual: Decimal, reason: str) -> dict:
    return {"hold": hold_id, "actual": max(usd(actual), ZERO), "reason": reason[:500]}


def hold_with_cursor(cursor, params: dict) -> int | None:
    """The hold's id, or None when the balance does not cover it."""
    cursor.execute(HOLD_SQL, params)
    row = cursor.fetchone()
    return row[0] if row else None


def available_with_cursor(cursor, account_id: int) -> Decimal:
    cursor.execute(AVAILABLE_SQL, {"account": account_id})
    return cursor.fetchone()[0]


def settle_with_cursor(cursor, params: dict) -> tuple[Decimal | None, Decimal | None]:
    """(charged, available after) — charged is None when the hold was already closed."""
    cursor.execute(SETTLE_SQL, params)
    row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)
