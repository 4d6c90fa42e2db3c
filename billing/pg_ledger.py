"""The money engine on PostgreSQL: hold and settle/release are ONE statement each.

Each statement locks the account row (and a capped key's spend row, always after it), changes
the cached amounts, writes the hold and the ledger entries, and commits on its own
(autocommit), so a paid request costs two database round trips in all. The same SQL serves
sync callers (Django's connection, below) and the async hot path (billing/pg_async.py, a
psycopg pool on the event loop). The rules are billing/outcomes.py's; the ORM adapter
(billing/ledger_orm.py) implements the same, and tests/billing/test_ledger_differential.py holds the
two to the same outcomes and rows.
"""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.backends.utils import CursorWrapper

from .money import ZERO, Amount, usd
from .outcomes import AlreadyClosed, Closed, HoldRef, HoldRequest, Refused

Params = dict[str, Any]  # a statement's named parameters
Row = tuple[Any, ...]  # a result row, from psycopg or from Django's cursor

# The WHERE clause is the guarantee: held grows only while balance - held covers the amount.
HOLD_SQL = """
WITH acc AS (
  UPDATE billing_account SET held = held + %(amount)s, updated_at = now()
  WHERE id = %(account)s AND balance - held >= %(amount)s
  RETURNING id, balance, held
), h AS (
  INSERT INTO billing_hold (account_id, amount, status, captured, idempotency_key, api_key_id, purpose,
                            request_id, created_at)
  SELECT id, %(amount)s, 'open', 0, %(key)s, NULL, %(purpose)s, %(request_id)s, now() FROM acc
  RETURNING id
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT acc.id, 'hold', 0, %(amount)s, acc.balance, acc.held, 'hold:' || %(key)s, h.id, %(purpose)s, now()
  FROM acc, h
)
SELECT h.id FROM h /*no_flush*/
"""

MONTH = "(date_trunc('month', now() AT TIME ZONE 'UTC'))::date"

# A capped key's spend row, made on first use from this month's usage rows (a no-op once it exists).
KEY_SPEND_ROW_SQL = f"""
INSERT INTO billing_keyspend (key_id, month, spent, held)
SELECT %(api_key)s, {MONTH}, COALESCE(SUM(cost_usd), 0), 0 FROM llm_usagelog
WHERE api_key_id = %(api_key)s AND created_at >= {MONTH}::timestamp AT TIME ZONE 'UTC'
HAVING NOT EXISTS (SELECT 1 FROM billing_keyspend WHERE key_id = %(api_key)s)
ON CONFLICT (key_id) DO NOTHING
"""

# A hold for a key with a monthly cap: the account row, then the key's spend row, locked in that
# order (as every writer does), and both checks made on the locked rows' current values, so
# concurrent holds in any number of processes see each other's reservations.
HOLD_CAPPED_SQL = f"""
WITH a AS (
  SELECT id, balance, held FROM billing_account WHERE id = %(account)s FOR UPDATE
), k AS (
  SELECT key_id, CASE WHEN month = {MONTH} THEN spent ELSE 0 END AS spent, billing_keyspend.held
  FROM billing_keyspend, a WHERE key_id = %(api_key)s FOR UPDATE OF billing_keyspend
), ok AS (
  SELECT a.id FROM a, k
  WHERE a.balance - a.held >= %(amount)s AND k.spent + k.held + %(amount)s <= %(cap)s
), acc AS (
  UPDATE billing_account SET held = a.held + %(amount)s, updated_at = now()
  FROM a, ok WHERE billing_account.id = ok.id
  RETURNING billing_account.id, billing_account.balance, billing_account.held
), ks AS (
  UPDATE billing_keyspend SET held = k.held + %(amount)s, spent = k.spent, month = {MONTH}
  FROM k, ok WHERE billing_keyspend.key_id = k.key_id
), h AS (
  INSERT INTO billing_hold (account_id, amount, status, captured, idempotency_key, api_key_id, purpose,
                            request_id, created_at)
  SELECT id, %(amount)s, 'open', 0, %(key)s, %(api_key)s, %(purpose)s, %(request_id)s, now() FROM acc
  RETURNING id
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT acc.id, 'hold', 0, %(amount)s, acc.balance, acc.held, 'hold:' || %(key)s, h.id, %(purpose)s, now()
  FROM acc, h
)
SELECT h.id, NULL, NULL FROM h /*no_flush*/
UNION ALL
SELECT NULL, CASE WHEN a.balance - a.held < %(amount)s THEN 'balance' ELSE 'cap' END,
       CASE WHEN a.balance - a.held < %(amount)s THEN a.balance - a.held
            ELSE GREATEST(%(cap)s - k.spent - k.held, 0) END
FROM a, k WHERE NOT EXISTS (SELECT 1 FROM ok)
"""

AVAILABLE_SQL = "SELECT balance - held FROM billing_account WHERE id = %(account)s"
EXISTING_HOLD_SQL = "SELECT id FROM billing_hold WHERE idempotency_key = %(key)s"

# A settle names its hold by id and, where the caller has it, by its idempotency key (%(key)s, else
# NULL). The hot path's holds do not wait for the disk (NO_FLUSH, below): a crash of PostgreSQL may
# lose one, and its id may then be drawn again (the id sequence's own record is lost with it) for
# another request's hold, which the lost request's settle must not close.
THIS_HOLD = "idempotency_key = COALESCE(%(key)s, idempotency_key)"

# Locks the account first (the order every writer uses), then closes the hold once: up to its
# amount the charge is the actual cost; above it, the excess while the available balance covers
# it, the rest written as a loss entry; a zero charge is a release. A capped key's spend row
# moves the hold from held to spent. Answers (captured, available after), or (NULL, available)
# when the hold was not open.
SETTLE_SQL = f"""
WITH a AS (
  SELECT id, balance, held FROM billing_account
  WHERE id = (SELECT account_id FROM billing_hold WHERE id = %(hold)s AND {THIS_HOLD}) FOR UPDATE
), c AS (
  SELECT o.id, CASE WHEN %(actual)s <= o.amount THEN %(actual)s
                    ELSE o.amount + LEAST(%(actual)s - o.amount, GREATEST(a.balance - a.held, 0))
                    END AS charge
  FROM billing_hold o, a WHERE o.id = %(hold)s AND o.account_id = a.id
), h AS (
  UPDATE billing_hold SET captured = c.charge, closed_at = now(),
                          status = CASE WHEN c.charge > 0 THEN 'settled' ELSE 'released' END
  FROM c WHERE billing_hold.id = c.id AND billing_hold.status = 'open'
  RETURNING billing_hold.id, billing_hold.account_id, billing_hold.amount, billing_hold.captured,
            billing_hold.idempotency_key, billing_hold.api_key_id
), acc AS (
  UPDATE billing_account SET balance = billing_account.balance - h.captured,
                             held = billing_account.held - h.amount, updated_at = now()
  FROM h WHERE billing_account.id = h.account_id
  RETURNING billing_account.id, billing_account.balance, billing_account.held
), ks AS (
  UPDATE billing_keyspend SET held = GREATEST(billing_keyspend.held - h.amount, 0), month = {MONTH},
         spent = CASE WHEN billing_keyspend.month = {MONTH} THEN billing_keyspend.spent ELSE 0 END
               + h.captured
  FROM h WHERE billing_keyspend.key_id = h.api_key_id
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, shortfall, created_at)
  SELECT acc.id, CASE WHEN h.captured > 0 THEN 'charge' ELSE 'release' END, -h.captured, -h.amount,
         acc.balance, acc.held,
         CASE WHEN h.captured > 0 THEN 'settle:' ELSE 'release:' END || h.idempotency_key,
         h.id, %(reason)s, 0, now()
  FROM acc, h
  UNION ALL
  SELECT acc.id, 'loss', 0, 0, acc.balance, acc.held, 'loss:' || h.idempotency_key, h.id, %(reason)s,
         %(actual)s - h.captured, now()
  FROM acc, h WHERE %(actual)s > h.captured
)
SELECT (SELECT captured FROM h), COALESCE((SELECT balance - held FROM acc), (SELECT balance - held FROM a))
"""

# SETTLE_SQL with the request's usage row (billing.metering.row_params) written by the same
# statement, its cost what the hold captured: one statement, one commit, and no row unless this
# statement closed the hold (the same row as SETTLE_SQL followed by metering.INSERT_FROM_HOLD_SQL;
# tests/billing/test_ledger_differential.py holds the two to the same rows). Keep the two in step.
SETTLE_WITH_USAGE_SQL = f"""
WITH a AS (
  SELECT id, balance, held FROM billing_account
  WHERE id = (SELECT account_id FROM billing_hold WHERE id = %(hold)s AND {THIS_HOLD}) FOR UPDATE
), c AS (
  SELECT o.id, CASE WHEN %(actual)s <= o.amount THEN %(actual)s
                    ELSE o.amount + LEAST(%(actual)s - o.amount, GREATEST(a.balance - a.held, 0))
                    END AS charge
  FROM billing_hold o, a WHERE o.id = %(hold)s AND o.account_id = a.id
), h AS (
  UPDATE billing_hold SET captured = c.charge, closed_at = now(),
                          status = CASE WHEN c.charge > 0 THEN 'settled' ELSE 'released' END
  FROM c WHERE billing_hold.id = c.id AND billing_hold.status = 'open'
  RETURNING billing_hold.id, billing_hold.account_id, billing_hold.amount, billing_hold.captured,
            billing_hold.idempotency_key, billing_hold.api_key_id
), acc AS (
  UPDATE billing_account SET balance = billing_account.balance - h.captured,
                             held = billing_account.held - h.amount, updated_at = now()
  FROM h WHERE billing_account.id = h.account_id
  RETURNING billing_account.id, billing_account.balance, billing_account.held
), ks AS (
  UPDATE billing_keyspend SET held = GREATEST(billing_keyspend.held - h.amount, 0), month = {MONTH},
         spent = CASE WHEN billing_keyspend.month = {MONTH} THEN billing_keyspend.spent ELSE 0 END
               + h.captured
  FROM h WHERE billing_keyspend.key_id = h.api_key_id
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, shortfall, created_at)
  SELECT acc.id, CASE WHEN h.captured > 0 THEN 'charge' ELSE 'release' END, -h.captured, -h.amount,
         acc.balance, acc.held,
         CASE WHEN h.captured > 0 THEN 'settle:' ELSE 'release:' END || h.idempotency_key,
         h.id, %(reason)s, 0, now()
  FROM acc, h
  UNION ALL
  SELECT acc.id, 'loss', 0, 0, acc.balance, acc.held, 'loss:' || h.idempotency_key, h.id, %(reason)s,
         %(actual)s - h.captured, now()
  FROM acc, h WHERE %(actual)s > h.captured
), usage AS (
  INSERT INTO llm_usagelog (user_id, api_key_id, request_id, endpoint, model, route, prompt_tokens,
                            cached_tokens, completion_tokens, reasoning_tokens, images, video_seconds,
                            cost_usd, latency_ms, ttft_ms, status, error_code, stream, created_at)
  SELECT %(user_id)s, %(api_key_id)s, %(request_id)s, %(endpoint)s, %(model)s, %(route)s, %(prompt_tokens)s,
         %(cached_tokens)s, %(completion_tokens)s, %(reasoning_tokens)s, %(images)s, %(video_seconds)s,
         h.captured, %(latency_ms)s, %(ttft_ms)s, %(status)s, %(error_code)s, %(stream)s, %(created_at)s
  FROM h
)
SELECT (SELECT captured FROM h), COALESCE((SELECT balance - held FROM acc), (SELECT balance - held FROM a))
"""

CLOSED_HOLD_SQL = """
SELECT h.captured, a.balance - a.held FROM billing_hold h JOIN billing_account a ON a.id = h.account_id
WHERE h.id = %(hold)s AND h.idempotency_key = COALESCE(%(key)s, h.idempotency_key) AND h.status <> 'open'
"""


# A chat hold commits without waiting for the disk: its statement turns synchronous_commit off for
# its own transaction (the hot path's lane, billing/pg_async.py, sends without_flush(...) of the
# hold statements; job holds stay durable). Safe for money because
# - WAL is one sequence: a crash of PostgreSQL loses only the newest commits, never one before a
#   commit that reached the disk; every settle is durable, and flushing it flushes its own hold;
# - so what a crash can lose is holds whose requests are still running. Such a request's settle
#   finds no hold (pg_async raises HoldLost): a reply is refused (nothing delivered, nothing
#   charged), as it would be if the hold had never been taken.
# What it saves is a wait for the disk on every paid request's way in (docs/performance.md).
NO_FLUSH = "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush"


def without_flush(sql: str) -> str:
    """A hold statement that commits without waiting for its WAL to be flushed (NO_FLUSH)."""
    if "/*no_flush*/" not in sql:
        raise ValueError("not a hold statement")
    return sql.replace("/*no_flush*/", NO_FLUSH)


HOLD_NO_FLUSH_SQL = without_flush(HOLD_SQL)
HOLD_CAPPED_NO_FLUSH_SQL = without_flush(HOLD_CAPPED_SQL)


def hold_params(request: HoldRequest) -> Params:
    return {
        "account": request.account_id,
        "amount": request.amount,
        "key": request.key,
        "purpose": request.purpose,
        "request_id": request.request_id,
        "api_key": request.api_key_id,
        "cap": request.cap,
    }


def settle_params(*, hold_id: int, actual: Amount, reason: str, key: str | None = None) -> Params:
    """`key`: the hold's idempotency key, where the caller has it (THIS_HOLD)."""
    return {"hold": hold_id, "actual": max(usd(actual), ZERO), "reason": reason[:500], "key": key}


def hold_statements(params: Params, *, flush: bool = True) -> list[str]:
    """The statements that take this hold, in order; the last one answers. `flush=False`: the
    hold's commit does not wait for the disk (NO_FLUSH)."""
    if params.get("cap") is None:
        return [HOLD_SQL if flush else HOLD_NO_FLUSH_SQL]
    return [KEY_SPEND_ROW_SQL, HOLD_CAPPED_SQL if flush else HOLD_CAPPED_NO_FLUSH_SQL]


def hold_outcome(row: Row | None, params: Params, available: Decimal | None) -> int | Refused:
    """The hold's id from the answering statement's row, or why it was refused."""
    if row is not None and row[0] is not None:
        hold_id: int = row[0]
        return hold_id
    if row is not None and len(row) > 1 and row[1] is not None:
        return Refused(row[1], row[2])
    return Refused("balance", available if available is not None else ZERO)


def settle_outcome(row: Row | None, actual: Decimal, closed_row: Row | None) -> Closed | AlreadyClosed:
    """From SETTLE_SQL's (captured, available) row, and CLOSED_HOLD_SQL's when it closed nothing."""
    if row is not None and row[0] is not None:
        return Closed(row[0], actual - row[0], row[1])
    return already_closed(closed_row)


def already_closed(closed_row: Row | None) -> AlreadyClosed:
    """From CLOSED_HOLD_SQL's (captured, available) row; no row reads as nothing captured."""
    captured, available = closed_row or (ZERO, None)
    return AlreadyClosed(captured, available)


# --- the adapter for sync callers (Django's connection) ------------------------------------


def hold(cursor: CursorWrapper, request: HoldRequest) -> HoldRef | Refused:
    params = hold_params(request)
    for sql in hold_statements(params):
        cursor.execute(sql, params)
    row = cursor.fetchone()
    available = None
    if row is None or row[0] is None:
        cursor.execute(AVAILABLE_SQL, params)
        available = cursor.fetchone()[0]
    outcome = hold_outcome(row, params, available)
    return outcome if isinstance(outcome, Refused) else HoldRef(outcome, request.account_id, request.amount)


def existing_hold(cursor: CursorWrapper, key: str) -> HoldRef | None:
    cursor.execute(
        "SELECT id, account_id, amount FROM billing_hold WHERE idempotency_key = %(key)s", {"key": key}
    )
    row = cursor.fetchone()
    return HoldRef(*row) if row else None


def close(cursor: CursorWrapper, hold_id: int, actual: Amount, reason: str = "") -> Closed | AlreadyClosed:
    params = settle_params(hold_id=hold_id, actual=actual, reason=reason)
    cursor.execute(SETTLE_SQL, params)
    row = cursor.fetchone()
    closed_row = None
    if row is None or row[0] is None:
        cursor.execute(CLOSED_HOLD_SQL, params)
        closed_row = cursor.fetchone()
    return settle_outcome(row, params["actual"], closed_row)


# --- many at once (group commit, billing/pg_async.py) ------------------------------------------
# One statement for a whole batch: each account row is locked once (in id order) and updated
# once; holds and ledger entries are written as sets, with the running held/balance per account
# in the entries exactly as one statement per item would have left them. Items these statements
# do not take (a hold that does not fit, a settle above its hold or of a closed hold) come back
# without a result and are redone one at a time with the single statements above.

# only the hot path's lane takes holds in batches, so its batch statement does not flush either
HOLD_MANY_SQL = without_flush("""
WITH req AS (
  SELECT * FROM unnest(%(accounts)s::bigint[], %(amounts)s::numeric[], %(keys)s::text[], %(purposes)s::text[],
                       %(request_ids)s::text[]) WITH ORDINALITY
                       AS r(account, amount, key, purpose, request_id, ord)
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
  INSERT INTO billing_hold (account_id, amount, status, captured, idempotency_key, api_key_id, purpose,
                            request_id, created_at)
  SELECT account, amount, 'open', 0, key, NULL::bigint, purpose, request_id, now()
  FROM ok ORDER BY account, ord
  RETURNING id, idempotency_key
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT ok.account, 'hold', 0, ok.amount, ok.balance, ok.held_after, 'hold:' || ok.key, h.id,
         ok.purpose, now()
  FROM ok JOIN h ON h.idempotency_key = ok.key ORDER BY ok.account, ok.ord
)
SELECT ok.ord, h.id FROM ok JOIN h ON h.idempotency_key = ok.key /*no_flush*/
""")

SETTLE_MANY_SQL = f"""
WITH req AS (
  SELECT * FROM unnest(%(holds)s::bigint[], %(keys)s::text[], %(actuals)s::numeric[], %(reasons)s::text[])
    WITH ORDINALITY AS r(hold, key, actual, reason, ord)
), locked AS (
  SELECT id, balance, held FROM billing_account
  WHERE id IN (SELECT account_id FROM billing_hold WHERE id = ANY(%(holds)s::bigint[])) ORDER BY id FOR UPDATE
), h AS (
  UPDATE billing_hold SET captured = req.actual, closed_at = now(),
                          status = CASE WHEN req.actual > 0 THEN 'settled' ELSE 'released' END
  FROM req, locked
  WHERE billing_hold.id = ANY(%(holds)s::bigint[]) AND billing_hold.id = req.hold
    AND billing_hold.idempotency_key = COALESCE(req.key, billing_hold.idempotency_key)
    AND locked.id = billing_hold.account_id AND billing_hold.status = 'open'
    AND req.actual <= billing_hold.amount  -- within the hold: never capped, so order cannot change it
  RETURNING billing_hold.id, billing_hold.account_id, billing_hold.amount, billing_hold.captured,
            billing_hold.idempotency_key, billing_hold.api_key_id, req.ord, req.reason
), ks AS (
  UPDATE billing_keyspend SET held = GREATEST(billing_keyspend.held - s.amount, 0), month = {MONTH},
         spent = CASE WHEN billing_keyspend.month = {MONTH} THEN billing_keyspend.spent ELSE 0 END
               + s.captured
  FROM (SELECT api_key_id, SUM(captured) AS captured, SUM(amount) AS amount FROM h
        WHERE api_key_id IS NOT NULL GROUP BY api_key_id) s
  WHERE billing_keyspend.key_id = s.api_key_id
), acc AS (
  UPDATE billing_account SET balance = billing_account.balance - s.captured,
                             held = billing_account.held - s.amount,
                             updated_at = now()
  FROM (SELECT account_id, SUM(captured) AS captured, SUM(amount) AS amount FROM h GROUP BY account_id) s
  WHERE billing_account.id = s.account_id AND billing_account.id IN (SELECT id FROM locked)
), run AS (
  SELECT h.*, locked.balance - SUM(h.captured) OVER w AS balance_after,
         locked.held - SUM(h.amount) OVER w AS held_after
  FROM h JOIN locked ON locked.id = h.account_id
  WINDOW w AS (PARTITION BY h.account_id ORDER BY h.ord)
), e AS (
  INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after, held_after,
                                   idempotency_key, hold_id, reason, created_at)
  SELECT account_id, CASE WHEN captured > 0 THEN 'charge' ELSE 'release' END, -captured, -amount,
         balance_after, held_after,
         CASE WHEN captured > 0 THEN 'settle:' ELSE 'release:' END || idempotency_key, id, reason, now()
  FROM run ORDER BY account_id, ord
), usage AS (  -- the usage rows (metering.row_params) of the items whose holds are closed, now or before
  INSERT INTO llm_usagelog (user_id, api_key_id, request_id, endpoint, model, route, prompt_tokens,
                            cached_tokens, completion_tokens, reasoning_tokens, images, video_seconds,
                            cost_usd, latency_ms, ttft_ms, status, error_code, stream, created_at)
  SELECT u.user_id, u.api_key_id, u.request_id, u.endpoint, u.model, u.route, u.prompt_tokens,
         u.cached_tokens, u.completion_tokens, u.reasoning_tokens, u.images, u.video_seconds,
         COALESCE(h.captured, o.captured), u.latency_ms, u.ttft_ms, u.status, u.error_code, u.stream,
         u.created_at
  FROM jsonb_to_recordset(%(usage)s::jsonb) AS u(
    ord bigint, user_id bigint, api_key_id bigint, request_id text, endpoint text, model text, route text,
    prompt_tokens integer, cached_tokens integer, completion_tokens integer, reasoning_tokens integer,
    images integer, video_seconds integer, latency_ms integer, ttft_ms integer, status text,
    error_code text, stream boolean, created_at timestamptz
  ) JOIN req ON req.ord = u.ord
    JOIN billing_hold o ON o.id = req.hold AND o.idempotency_key = COALESCE(req.key, o.idempotency_key)
    LEFT JOIN h ON h.ord = u.ord
  WHERE h.id IS NOT NULL OR o.status <> 'open'  -- closed now, or before (the stale-hold reaper)
)
SELECT ord, captured, balance_after - held_after FROM run
UNION ALL  -- the items whose holds were closed before: their usage rows are written, nothing charged
SELECT req.ord, NULL, NULL FROM req JOIN billing_hold o ON o.id = req.hold
WHERE o.status <> 'open' AND o.idempotency_key = COALESCE(req.key, o.idempotency_key)
"""


def hold_many_params(items: list[Params]) -> Params:
    return {
        "accounts": [p["account"] for p in items],
        "amounts": [p["amount"] for p in items],
        "keys": [p["key"] for p in items],
        "purposes": [p["purpose"] for p in items],
        "request_ids": [p["request_id"] for p in items],
    }


def settle_many_params(items: list[Params], usage: "list[Params | None]") -> Params:
    """`usage`: each item's usage row (billing.metering.row_params), or None for an item without one."""
    rows = [{**row, "ord": n} for n, row in enumerate(usage, 1) if row is not None]
    return {
        "holds": [p["hold"] for p in items],
        "keys": [p.get("key") for p in items],
        "actuals": [p["actual"] for p in items],
        "reasons": [p["reason"] for p in items],
        "usage": json.dumps(rows, default=_json_value),  # one parameter, encoded in C, for any batch size
    }


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # a usage row's created_at, with its time zone
    raise TypeError(f"a usage row holds {type(value).__name__}, which the batch statement does not take")
