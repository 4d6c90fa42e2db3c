"""The ledger's PostgreSQL path: hold and settle/release are ONE statement each.

Each statement locks the account row, changes the cached balance, writes the hold and the
ledger entry, and commits on its own (autocommit), so a paid request costs two database round
trips in all. The same SQL serves sync callers (Django's connection) and the async hot path
(a psycopg pool on the event loop, no thread hop). Semantics match billing/ledger.py exactly;
the SQLite path there remains the reference, and the ledger tests run against both.
"""

from decimal import Decimal
from functools import lru_cache

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
EXISTING_HOLD_SQL = "SELECT id FROM billing_hold WHERE idempotency_key = %(key)s"

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

_SETTLE_TAIL = "\nSELECT (SELECT captured FROM h)"


@lru_cache(maxsize=16)
def settle_sql(also_cte: str | None = None) -> str:
    """SETTLE_SQL, optionally with one more data-modifying CTE (`also_cte`, e.g. the usage row)
    that reads the hold this statement closed as `h` (id, account_id, amount, captured,
    idempotency_key): one statement, one commit, and it writes only if the settle happened."""
    if not also_cte:
        return SETTLE_SQL
    head, tail = SETTLE_SQL.rsplit(_SETTLE_TAIL, 1)
    return f"{head}, also AS (\n  {also_cte}\n){_SETTLE_TAIL}{tail}"


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


# --- many at once (group commit, billing/pg_async.py) ------------------------------------------
# One statement for a whole batch: each account row is locked once (in id order) and updated
# once; holds and ledger entries are written as sets, with the running held/balance per account
# in the entries exactly as one statement per item would have left them. Items these statements
# do not take (a hold that does not fit, a settle above its hold or of a closed hold) come back
# without a result and are redone one at a time with the single statements above.

HOLD_MANY_SQL = """
WITH req AS (
  SELECT * FROM unnest(%(accounts)s::bigint[], %(amounts)s::numeric[], %(keys)s::text[], %(purposes)s::text[],
                       %(request_ids)s::text[]) WITH ORDINALITY AS r(account, amount, key, purpose, request_id, ord)
), locked AS (
  SELECT id, balance, held FROM billing_account WHERE id = ANY(%(accounts)s::bigint[]) ORDER BY id FOR UPDATE
), run AS (
  SELECT req.*, locked.balance,
         locked.held + SUM(req.amount) OVER (PARTITION BY req.account ORDER BY req.ord) AS held_after
  FROM req JOIN locked ON locked.id = req.account
), ok AS (
  SELECT * FROM run WHERE held_after <= balance  -- once one does not fit, none after it does
), acc AS (
  UPDATE billing_account SET held = billing_account.held + s.total, updated_at = now()
  FROM (SELECT account, SUM(amount) AS total FROM ok GROUP BY account) s
  WHERE billing_account.id = s.account AND billing_account.id = ANY(%(accounts)s::bigint[])
), h AS (
  INSERT INTO billing_hold (account_id, amount, status, captured, idempotency_key, purpose, request_id, created_at)
  SELECT account, amount, 'open', 0, key, purpose, request_id, now() FROM ok ORDER BY account, ord
  RETURNING id, idempotency_key
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT ok.account, 'hold', 0, ok.amount, ok.balance, ok.held_after, 'hold:' || ok.key, h.id, ok.purpose, now()
  FROM ok JOIN h ON h.idempotency_key = ok.key ORDER BY ok.account, ok.ord
)
SELECT ok.ord, h.id FROM ok JOIN h ON h.idempotency_key = ok.key
"""

SETTLE_MANY_SQL = """
WITH req AS (
  SELECT * FROM unnest(%(holds)s::bigint[], %(actuals)s::numeric[], %(reasons)s::text[])
    WITH ORDINALITY AS r(hold, actual, reason, ord)
), locked AS (
  SELECT id, balance, held FROM billing_account
  WHERE id IN (SELECT account_id FROM billing_hold WHERE id = ANY(%(holds)s::bigint[])) ORDER BY id FOR UPDATE
), h AS (
  UPDATE billing_hold SET captured = req.actual, closed_at = now(),
                          status = CASE WHEN req.actual > 0 THEN 'settled' ELSE 'released' END
  FROM req, locked
  WHERE billing_hold.id = ANY(%(holds)s::bigint[]) AND billing_hold.id = req.hold
    AND locked.id = billing_hold.account_id AND billing_hold.status = 'open'
    AND req.actual <= billing_hold.amount  -- within the hold: never capped, so order cannot change it
  RETURNING billing_hold.id, billing_hold.account_id, billing_hold.amount, billing_hold.captured,
            billing_hold.idempotency_key, req.ord, req.reason
), acc AS (
  UPDATE billing_account SET balance = billing_account.balance - s.captured, held = billing_account.held - s.amount,
                             updated_at = now()
  FROM (SELECT account_id, SUM(captured) AS captured, SUM(amount) AS amount FROM h GROUP BY account_id) s
  WHERE billing_account.id = s.account_id AND billing_account.id IN (SELECT id FROM locked)
), run AS (
  SELECT h.*, locked.balance - SUM(h.captured) OVER w AS balance_after, locked.held - SUM(h.amount) OVER w AS held_after
  FROM h JOIN locked ON locked.id = h.account_id
  WINDOW w AS (PARTITION BY h.account_id ORDER BY h.ord)
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT account_id, CASE WHEN captured > 0 THEN 'charge' ELSE 'release' END, -captured, -amount, balance_after,
         held_after, CASE WHEN captured > 0 THEN 'settle:' ELSE 'release:' END || idempotency_key, id, reason, now()
  FROM run ORDER BY account_id, ord
)
SELECT ord, captured, balance_after - held_after FROM run
"""


def hold_many_params(items: list[dict]) -> dict:
    return {"accounts": [p["account"] for p in items], "amounts": [p["amount"] for p in items],
            "keys": [p["key"] for p in items], "purposes": [p["purpose"] for p in items],
            "request_ids": [p["request_id"] for p in items]}


def settle_many_params(items: list[dict]) -> dict:
    return {"holds": [p["hold"] for p in items], "actuals": [p["actual"] for p in items],
            "reasons": [p["reason"] for p in items]}
