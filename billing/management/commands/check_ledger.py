from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.ledger import find_mismatches, find_orphans
from billing.models import Account


class Command(BaseCommand):
    help = (
        "Re-add every account's ledger entries and open holds, and look for holds and entries that"
        " point at no row; exit non-zero on any mismatch."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = find_mismatches()
        for p in problems:
            self.stdout.write(
                f"account {p.account_id}: {p.field} cached={p.cached} from_entries={p.from_entries}"
            )
        orphans = find_orphans()
        for o in orphans:
            self.stdout.write(f"{o.table} {o.row_id}: its {o.field} {o.points_to} does not exist")
        if problems or orphans:
            raise CommandError(f"{len(problems) + len(orphans)} ledger mismatch(es)")
        self.stdout.write(f"ledger OK: {Account.objects.count()} accounts agree with their entries")
