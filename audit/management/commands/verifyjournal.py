from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import chain
from audit.journal import verify_chain
from audit.models import Entry
from pacsone.humanize import count


class Command(BaseCommand):
    help = ("Recompute the system journal's keyed MAC chain and check that heads exported off the database are "
            "still in it; report the first broken link (exit status 1).")

    def add_arguments(self, parser):
        parser.add_argument("--head", action="append", default=[], metavar="ID:MAC",
                            help="an exported head (from the monthly mail, a syslog server or a log line)")
        parser.add_argument("--log", action="append", default=[], nargs="?", const=str(Path(settings.LOG_DIR) / "pacsone.log"),
                            metavar="FILE", help="a log or syslog file: every 'journal head' line in it is checked "
                                                 "(without FILE: the server's own log)")

    def handle(self, *args, **options):
        heads = self._heads(options)
        total = Entry.objects.count()
        with tqdm(total=total, unit="entry", disable=options["verbosity"] < 1 or total < 10000) as bar:
            try:
                report = verify_chain(progress=bar.update, heads=heads)
            except chain.JournalKeyError as error:
                raise CommandError(str(error)) from None
        if report.ok:
            against = f"; {count(report.heads_checked, 'exported head', 'exported heads')} still in it" if heads else ""
            self.stdout.write(self.style.SUCCESS(f"journal intact: {report.checked} entries, every link holds{against}"))
            return
        where = f"at entry id {report.broken_at}" if report.broken_at else "at the end"
        raise CommandError(f"journal broken {where}: {report.reason} ({report.checked} entries before it are intact)")

    def _heads(self, options) -> list[chain.Head]:
        heads = []
        for text in options["head"]:
            try:
                heads.append(chain.parse_head(text))
            except ValueError as error:
                raise CommandError(str(error)) from None
        for name in options["log"]:
            try:
                found = chain.heads_in(Path(name).read_text(errors="replace"))
            except OSError as error:
                raise CommandError(f"cannot read {name}: {error.strerror}") from None
            if not found:
                raise CommandError(f"{name} holds no 'journal head' line")
            heads.extend(found)
        return heads
