from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.ledger import find_mismatches
from billing.models import Account


class Command(BaseCommand):
    help = "Re-add every account's ledger entries and open holds; exit non-zero on any mismatch."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = find_mismatches()
        for p in problems:
            self.stdout.write(
                f"account {p.account_id}: {p.field} cached={p.cached} from_entries={p.from_entries}"
            )
        if problems:
            raise CommandError(f"{len(problems)} ledger mismatch(es)")
        self.stdout.write(f"ledger OK: {Account.objects.count()} accounts agree with their entries")
