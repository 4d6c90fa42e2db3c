from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from llm.catalog import sync_catalog


class Command(BaseCommand):
    help = "Load the model catalog data file into the database (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--path", default=str(settings.GPUNIQ_CATALOG_PATH))

    def handle(self, *args, path, **options):
        file = Path(path)
        if not file.exists():
            raise CommandError(f"catalog file not found: {file}")
        try:
            created, updated = sync_catalog(file)
        except (ValueError, KeyError) as exc:
            raise CommandError(f"bad catalog file {file}: {exc}") from None
        self.stdout.write(f"catalog synced: {created} created, {updated} updated")
