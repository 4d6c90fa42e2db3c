"""A hold's account and a ledger entry's account and hold are not checked by the database on each
write (billing.models.STRUCTURAL_REFERENCES): the statements that write them take them from rows
they have just locked or written. What that must not lose: the ORM still refuses to delete what
they point at, `check_ledger` finds any row that points at nothing, and a paid request pays no
foreign-key check for them."""

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import ProtectedError

from billing import ledger
from billing.models import Account, Hold, LedgerEntry

from ..conftest import make_user


def _check_ledger() -> tuple[bool, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def test_check_ledger_reports_a_hold_or_entry_that_points_at_nothing(committed):
    user = make_user("orphans", "1")
    account_id = user.account.pk
    hold = ledger.hold(account_id=account_id, amount="0.10", idempotency_key=uuid.uuid4().hex)
    missing_account = Account.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    missing_hold = Hold.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    assert _check_ledger()[0]
    entry = LedgerEntry.objects.filter(hold_id=hold.id).get()
    with connection.cursor() as cursor:  # what a wrong statement would write: the database takes it
        cursor.execute("UPDATE billing_ledgerentry SET hold_id = %s WHERE id = %s", [missing_hold, entry.pk])
        cursor.execute("UPDATE billing_hold SET account_id = %s WHERE id = %s", [missing_account, hold.id])
    try:
        ok, out = _check_ledger()
        assert not ok
        assert f"billing_ledgerentry {entry.pk}: its hold {missing_hold} does not exist" in out
        assert f"billing_hold {hold.id}: its account {missing_account} does not exist" in out
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE billing_ledgerentry SET hold_id = %s WHERE id = %s", [hold.id, entry.pk])
            cursor.execute("UPDATE billing_hold SET account_id = %s WHERE id = %s", [account_id, hold.id])
        ledger.release(hold_id=hold.id)
    ok, out = _check_ledger()
    assert ok, out


def test_the_orm_still_refuses_to_delete_an_account_or_hold_with_entries(committed):
    user = make_user("protected", "1")
    hold = ledger.hold(account_id=user.account.pk, amount="0.10", idempotency_key=uuid.uuid4().hex)
    with pytest.raises(ProtectedError):
        Hold.objects.filter(pk=hold.id).delete()
    with pytest.raises(ProtectedError):
        Account.objects.filter(pk=user.account.pk).delete()
    assert Hold.objects.filter(pk=hold.id, status=Hold.OPEN).exists()
    ledger.release(hold_id=hold.id)


@pytest.mark.postgres
def test_a_paid_request_pays_no_foreign_key_check_for_its_hold_and_entries(committed):
    """The only foreign-key checks left on the hot inserts: an operator's entry's author, and the
    usage row's user and key (which come from the request's principal, not from a locked row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.conrelid::regclass::text IN "
            "('billing_hold', 'billing_ledgerentry', 'llm_usagelog') ORDER BY 1, 2"
        )
        checked = cursor.fetchall()
    assert checked == [
        ("billing_ledgerentry", "created_by_id"),
        ("llm_usagelog", "api_key_id"),
        ("llm_usagelog", "user_id"),
    ]
