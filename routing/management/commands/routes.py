"""`manage.py routes list | add NAME ... | remove NAME`: the routing table for scripted set-ups
(the same service as the pages and the API, journaled as the system)."""

import datetime

from django.core.management.base import BaseCommand, CommandError

from routing.matching import RuleError
from routing.models import RoutingRule
from routing.rules import describe, destinations_named, do_remove_rule, do_save_rule
from pacsone.humanize import count


def _time(text: str) -> datetime.time:
    try:
        return datetime.datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise CommandError(f"{text!r} is not a time as HH:MM") from None


class Command(BaseCommand):
    help = "List, add or remove routing rules."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the rules, in the order they are tried")
        add = sub.add_parser("add", help="add a rule")
        add.add_argument("name")
        match = add.add_mutually_exclusive_group(required=True)
        match.add_argument("--from-ae", metavar="AET", help="the sender's AE title (* and ? allowed)")
        match.add_argument("--match", metavar="KEYWORD=PATTERN", help="an attribute, e.g. PatientID=TEST*")
        add.add_argument("--to", required=True, metavar="AET[,AET...]", help="registered destination AE titles")
        when = add.add_mutually_exclusive_group()
        when.add_argument("--window", metavar="HH:MM-HH:MM", help="send only inside this window (may cross midnight)")
        when.add_argument("--daily", metavar="HH:MM", help="send once a day at this time")
        add.add_argument("--auto-purge", action="store_true", help="delete the study once every destination confirmed it")
        add.add_argument("--retries", type=int, default=3, metavar="N", help="attempts per destination (default 3)")
        add.add_argument("--priority", type=int, default=100)
        add.add_argument("--each-instance", action="store_true", help="send as instances arrive, not once the study is quiet")
        remove = sub.add_parser("remove", help="remove a rule (its unfinished jobs are cancelled)")
        remove.add_argument("name")

    def handle(self, *args, **options):
        getattr(self, f"_{options['action']}")(options)

    def _list(self, options):
        rules = RoutingRule.objects.prefetch_related("destinations")
        if not rules:
            self.stdout.write("no routing rules")
        for rule in rules:
            self.stdout.write(f"{rule.name}: {describe(rule, rule.destinations.all())}")

    def _add(self, options):
        if RoutingRule.objects.filter(name=options["name"]).exists():
            raise CommandError(f"a rule named {options['name']!r} exists already")
        rule = RoutingRule(name=options["name"], auto_purge=options["auto_purge"], max_attempts=options["retries"],
                           priority=options["priority"], each_instance=options["each_instance"])
        if options["from_ae"]:
            rule.source_ae_pattern = options["from_ae"]
        else:
            keyword, sep, pattern = options["match"].partition("=")
            if not sep:
                raise CommandError("--match takes KEYWORD=PATTERN, e.g. PatientID=TEST*")
            rule.match_keyword, rule.match_pattern = keyword.strip(), pattern.strip()
        if options["window"]:
            start, sep, end = options["window"].partition("-")
            if not sep:
                raise CommandError("--window takes HH:MM-HH:MM")
            rule.schedule, rule.window_from, rule.window_to = RoutingRule.Schedule.WINDOW, _time(start), _time(end)
        elif options["daily"]:
            rule.schedule, rule.daily_at = RoutingRule.Schedule.DAILY, _time(options["daily"])
        try:
            destinations = destinations_named([t.strip() for t in options["to"].split(",") if t.strip()])
            do_save_rule(rule, destinations, acting_user=None)
        except RuleError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"added {rule.name}: {describe(rule, destinations)}")

    def _remove(self, options):
        rule = RoutingRule.objects.filter(name=options["name"]).first()
        if rule is None:
            raise CommandError(f"no routing rule named {options['name']!r}")
        cancelled = do_remove_rule(rule, acting_user=None)
        self.stdout.write(f"removed {options['name']}" + (f"; {count(cancelled, 'unfinished job', 'unfinished jobs')} cancelled" if cancelled else ""))
