import json

from django.core.management.base import BaseCommand

from pacsone.stats import archive_stats


class Command(BaseCommand):
    help = "Print how many patients, studies, series and instances the archive holds, and their size."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        stats = archive_stats()
        if options["json"]:
            self.stdout.write(json.dumps(stats))
            return
        for key, value in stats.items():
            self.stdout.write(f"{key:<10} {value:>15,}")
        self.stdout.write(f"{'':<10} {stats['bytes'] / 1e9:>15,.2f} GB")
