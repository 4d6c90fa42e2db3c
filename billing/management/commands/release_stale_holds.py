from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from billing.ledger import release_stale_holds


class Command(BaseCommand):
    help = "Release holds left open longer than the hold timeout (a crashed process never settled them)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=settings.GPUNIQ_HOLD_TIMEOUT_SECONDS,
            help="seconds (default: GPUNIQ_HOLD_TIMEOUT_SECONDS)",
        )

    def handle(self, *args: Any, older_than: int, **options: Any) -> None:
        count = release_stale_holds(older_than_seconds=older_than)
        self.stdout.write(f"released {count} stale hold(s)")
