"""`manage.py statsreport (--daily|--weekly|--monthly|--from YYYYMMDD --to YYYYMMDD) [--by day|week|month] [--send]`:
print a period's statistics; with --send, mail the report to the administrators now."""

import datetime

from django.core.management.base import BaseCommand, CommandError

from pacsone.mail import MailError
from pacsone.stats import period_figures
from pacsone.stats_days import BY_CHOICES, Period, period_problems
from pacsone.stats_periods import report_period
from pacsone.stats_report import REPORT_TITLES, figures_text, mail_report


def _day(text: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(text.replace("-", ""), "%Y%m%d").date()
    except ValueError:
        raise CommandError(f"{text!r} is not a day (YYYYMMDD)") from None


class Command(BaseCommand):
    help = "Print the statistics of yesterday, last week, last month or a range; --send mails them."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        for kind in REPORT_TITLES:
            which.add_argument(f"--{kind}", action="store_const", const=kind, dest="report")
        which.add_argument("--from", dest="first", help="First day (YYYYMMDD), with --to.")
        parser.add_argument("--to", dest="last", help="Last day (YYYYMMDD), included.")
        parser.add_argument("--by", choices=BY_CHOICES, default=None, help="Unit of the timeline (default: day).")
        parser.add_argument("--send", action="store_true", help="Mail the report to the administrators now.")

    def handle(self, *args, **options):
        if options["report"]:
            period = report_period(options["report"])
            title = f"{REPORT_TITLES[options['report']]} statistics report"
        else:
            if not options["last"]:
                raise CommandError("--from needs --to")
            period = Period(_day(options["first"]), _day(options["last"]), "day")
            title = "Statistics report"
        if options["by"]:
            period = Period(period.first, period.last, options["by"])
        if problems := period_problems(period.first, period.last, period.by):
            raise CommandError(" ".join(problems.values()))
        figures = period_figures(period)
        self.stdout.write(figures_text(figures))
        if options["send"]:
            try:
                self.stdout.write(mail_report(period, title, {"username": "(shell)"}))
            except MailError as error:
                raise CommandError(f"not sent: {error.reason}") from None
