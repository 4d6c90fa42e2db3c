from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.core.exceptions import ValidationError

from accounts.keys import create_key
from accounts.models import User
from billing import ledger
from billing.models import LedgerEntry
from billing.money import format_usd


class Command(BaseCommand):
    help = "Create an API key (and the user if missing); optionally credit the balance. Prints the key last."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--credit", default=None, help="USD to add through an adjustment entry")
        parser.add_argument("--name", default="default")
        parser.add_argument("--rpm", type=int, default=None)

    def handle(
        self, *args: Any, email: str, credit: str | None, name: str, rpm: int | None, **options: Any
    ) -> None:
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"not an email address: {email!r}") from None
        amount = None
        if credit is not None:
            try:
                amount = Decimal(credit)
            except InvalidOperation:
                raise CommandError(f"--credit must be a number of USD, got {credit!r}") from None
            if not amount.is_finite() or amount <= 0:
                raise CommandError("--credit must be a positive amount")
        if rpm is not None and rpm < 1:
            raise CommandError("--rpm must be at least 1")
        user = User.objects.filter(email=email.lower()).first() or User.objects.create_user(email)
        account = ledger.account_for_user(user.pk)
        key, raw = create_key(user=user, name=name, rpm=rpm)
        if amount:
            ledger.post(
                account_id=account.pk,
                amount=amount,
                kind=LedgerEntry.ADJUSTMENT,
                idempotency_key=f"create_api_key:{key.pk}",
                reason=f"credit via create_api_key ({name})",
            )
        account.refresh_from_db()
        self.stderr.write(
            f"user {user.email}: key {key.display} created, balance {format_usd(account.balance)}"
        )
        self.stdout.write(raw)
