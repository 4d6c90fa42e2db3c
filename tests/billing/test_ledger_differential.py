"""One money engine, two storage adapters: generated operation sequences replayed on the ORM
adapter (billing/ledger_orm.py, what SQLite runs) and on the PostgreSQL statements
(billing/pg_ledger.py, what the hot path runs) must give the same outcomes and leave the same rows.
The PostgreSQL settle runs in both of its variants, each written whole: SETTLE_SQL followed by the
usage row's own statement (metering.INSERT_FROM_HOLD_SQL), and SETTLE_WITH_USAGE_SQL, which writes
that row itself; every adapter writes a usage row for each settle that closed a hold.

Both run here on PostgreSQL (the ORM adapter is database-agnostic), each on its own account, so
every difference is the adapters' own. The rules they must both follow: billing/outcomes.py.
"""

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings, strategies as st

from billing import ledger_orm, metering, pg_ledger
from billing.models import Account, Hold, KeySpend, LedgerEntry, UsageLog
from billing.outcomes import AlreadyClosed, Closed, HoldRef, HoldRequest

from ..conftest import make_user

pytestmark = pytest.mark.postgres

cents = st.integers(min_value=0, max_value=700).map(lambda c: Decimal(c) / 100)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), cents, st.booleans()),  # amount, under the key's cap?
        st.tuples(st.just("close"), st.integers(min_value=0, max_value=9), cents | st.just(Decimal("-1"))),
        st.tuples(
            st.just("post"),
            st.sampled_from(["topup", "refund", "dispute", "adjustment"]),
            cents.map(lambda c: -c) | cents,
        ),
    ),
    min_size=1,
    max_size=14,
)


def usage_fields(user, n: int) -> dict:
    """The n-th settle's usage row, a distinct value in each column: one written out of place shows."""
    return dict(
        user_id=user.pk,
        api_key_id=user.key.pk,
        request_id=f"close-{n}",
        endpoint="chat",
        model="m",
        route="vendor:m",
        prompt_tokens=11,
        cached_tokens=3,
        completion_tokens=7,
        reasoning_tokens=2,
        images=1,
        video_seconds=5,
        latency_ms=123,
        ttft_ms=45,
        status="ok",
        error_code="e",
        stream=True,
    )


class Orm:
    def __init__(self, user):
        self.user, self.closes = user, 0

    def hold(self, request):
        return ledger_orm.hold(request)

    def close(self, hold_id, actual):
        self.closes += 1
        outcome = ledger_orm.close(hold_id, actual, "r")
        if isinstance(outcome, Closed):
            metering.write(**usage_fields(self.user, self.closes), cost_usd=outcome.charged)
        return outcome


class Sql(Orm):
    """SETTLE_SQL, then the usage row's own statement (as a settle redone after a batch sends them)."""

    def hold(self, request):
        with connection.cursor() as cursor:
            return pg_ledger.hold(cursor, request)

    def close(self, hold_id, actual):
        self.closes += 1
        with connection.cursor() as cursor:
            outcome = pg_ledger.close(cursor, hold_id, actual, "r")
            if isinstance(outcome, Closed):
                params = pg_ledger.settle_params(hold_id=hold_id, actual=actual, reason="r")
                usage = metering.row_params(**usage_fields(self.user, self.closes))
                cursor.execute(metering.INSERT_FROM_HOLD_SQL, {**usage, **params})
        return outcome


class SqlWithUsage(Sql):
    """SETTLE_WITH_USAGE_SQL: the settle statement writes the usage row itself (a lone settle)."""

    def close(self, hold_id, actual):
        self.closes += 1
        params = pg_ledger.settle_params(hold_id=hold_id, actual=actual, reason="r")
        usage = metering.row_params(**usage_fields(self.user, self.closes))
        with connection.cursor() as cursor:
            cursor.execute(pg_ledger.SETTLE_WITH_USAGE_SQL, {**usage, **params})
            row, closed = cursor.fetchone(), None
            if row[0] is None:
                cursor.execute(pg_ledger.CLOSED_HOLD_SQL, params)
                closed = cursor.fetchone()
        return pg_ledger.settle_outcome(row, params["actual"], closed)


ADAPTERS = {"orm": Orm, "sql": Sql, "sql-with-usage": SqlWithUsage}


def replay(adapter, user, ops, tag: str) -> list:
    """Run `ops` on `user`'s account; outcomes with hold ids made relative (1st hold, 2nd, ...)."""
    holds, outcomes = [], []
    for op in ops:
        if op[0] == "hold":
            request = HoldRequest(
                account_id=user.account.pk,
                amount=op[1],
                key=f"{tag}:{len(outcomes)}",
                api_key_id=user.key.pk,
                cap=Decimal("5") if op[2] else None,
            )
            outcome = adapter.hold(request)
            if isinstance(outcome, HoldRef):
                holds.append(outcome.id)
                outcome = ("held", len(holds) - 1, outcome.amount)
            outcomes.append(outcome)
        elif op[0] == "close" and holds:
            outcomes.append(adapter.close(holds[op[1] % len(holds)], op[2]))
        elif op[0] == "post":
            entry = ledger_orm.post(
                account_id=user.account.pk,
                amount=op[2],
                kind=op[1],
                idempotency_key=f"{tag}:post:{len(outcomes)}",
            )
            outcomes.append(("posted", entry.amount))
    return outcomes


def rows(user, tag: str) -> dict:
    account = Account.objects.get(pk=user.account.pk)
    holds = list(
        Hold.objects.filter(account=account).order_by("id").values_list("amount", "status", "captured")
    )
    entries = [
        (kind, amount, held, bal, held_after, short, key.replace(tag, "T"))
        for kind, amount, held, bal, held_after, short, key in LedgerEntry.objects.filter(account=account)
        .exclude(kind="topup", idempotency_key__startswith="test-credit")
        .order_by("id")
        .values_list(
            "kind", "amount", "held_delta", "balance_after", "held_after", "shortfall", "idempotency_key"
        )
    ]
    spend = KeySpend.objects.filter(pk=user.key.pk).values_list("spent", "held").first()
    columns = [f.attname for f in UsageLog._meta.concrete_fields if f.attname not in ("id", "created_at")]
    usage = [
        {**row, "user_id": "U", "api_key_id": "K"}
        for row in UsageLog.objects.filter(user_id=user.pk).order_by("id").values(*columns)
    ]
    return {
        "account": (account.balance, account.held),
        "holds": holds,
        "entries": entries,
        "key": spend,
        "usage": usage,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_both_adapters_give_the_same_outcomes_and_rows(committed, ops):
    results = {}
    for name, adapter in ADAPTERS.items():
        user = make_user(f"diff-{name}", "3")
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        results[name] = (replay(adapter(user), user, ops, tag), rows(user, tag))
    assert results["orm"][0] == results["sql"][0] == results["sql-with-usage"][0]
    assert results["orm"][1] == results["sql"][1]
    assert results["sql"][1] == results["sql-with-usage"][1]


def test_the_specification_cases_the_adapters_once_disagreed_on(committed):
    """settle(0) and settle(-1) of a closed hold; a zero hold settled with a positive charge."""
    for adapter_class in ADAPTERS.values():
        user = make_user("spec", "1")
        adapter = adapter_class(user)
        zero = adapter.hold(HoldRequest(account_id=user.account.pk, amount=Decimal(0), key=uuid.uuid4().hex))
        first = adapter.close(zero.id, Decimal("0.25"))
        assert first == Closed(Decimal("0.25"), Decimal(0), Decimal("0.75"))  # from the balance: settled
        assert Hold.objects.get(pk=zero.id).status == Hold.SETTLED
        assert adapter.close(zero.id, Decimal(0)) == AlreadyClosed(Decimal("0.25"), Decimal("0.75"))
        assert adapter.close(zero.id, Decimal(-1)) == AlreadyClosed(Decimal("0.25"), Decimal("0.75"))
        other = adapter.hold(
            HoldRequest(account_id=user.account.pk, amount=Decimal("0.5"), key=uuid.uuid4().hex)
        )
        assert adapter.close(other.id, Decimal(-1)) == Closed(Decimal(0), Decimal(0), Decimal("0.75"))
        assert Hold.objects.get(pk=other.id).status == Hold.RELEASED
