from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.journal import verify_chain
from audit.models import Entry


class Command(BaseCommand):
    help = "Recompute the system journal's hash chain; report the first broken link (exit status 1)."

    def handle(self, *args, **options):
        total = Entry.objects.count()
        with tqdm(total=total, unit="entry", disable=options["verbosity"] < 1 or total < 10000) as bar:
            report = verify_chain(progress=bar.update)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"journal intact: {report.checked} entries, every link holds"))
            return
        where = f"at entry id {report.broken_at}" if report.broken_at else "at the end"
        raise CommandError(f"journal broken {where}: {report.reason} ({report.checked} entries before it are intact)")
