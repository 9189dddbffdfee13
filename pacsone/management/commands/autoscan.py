from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pacsone.autoscan import scan_folder


class Command(BaseCommand):
    help = "Scan the auto-scan folder once (PACS_AUTOSCAN_DIR, or the folder given) and import what it holds."

    def add_arguments(self, parser):
        parser.add_argument("folder", nargs="?", type=Path)

    def handle(self, *args, **options):
        folder = options["folder"] or (Path(settings.PACS_AUTOSCAN_DIR) if settings.PACS_AUTOSCAN_DIR else None)
        if folder is None:
            raise CommandError("no folder: give one, or set PACS_AUTOSCAN_DIR")
        report = scan_folder(folder)
        self.stdout.write(str(report))
        for name in report.failed:
            self.stdout.write(f"  failed: {name}")
