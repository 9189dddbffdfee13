"""The routing table's changes, one service for pages, API and `manage.py routes`: each checks
the rule, saves it and writes its journal entry in one transaction (do_*, acting_user=)."""

import datetime
from dataclasses import dataclass

from django.db import transaction

from audit.journal import Action, record
from pacsone.humanize import count
from pacsone.matching import PatternError, check_pattern
from pacsone.models import RemoteAE

from . import clock
from .matching import RuleError, study_matches, tag_key
from .models import Job, RoutingRule

MAX_ATTEMPTS_LIMIT = 20


def check_rule(rule: RoutingRule, destinations) -> None:
    """RuleError, in words, for a rule that cannot be used as written."""
    if not rule.name.strip():
        raise RuleError("a rule needs a name")
    by_ae = bool(rule.source_ae_pattern.strip())
    by_attribute = bool(rule.match_keyword.strip() or rule.match_pattern.strip())
    if by_ae == by_attribute:
        raise RuleError("match either the source AE title or one attribute (keyword and pattern), not both or neither")
    try:
        if by_ae:
            check_pattern(rule.source_ae_pattern)
        else:
            if not rule.match_pattern.strip():
                raise RuleError(f"give a pattern for {rule.match_keyword}")
            tag_key(rule.match_keyword.strip())
            check_pattern(rule.match_pattern)
    except PatternError as error:
        raise RuleError(str(error)) from None
    if not list(destinations):
        raise RuleError("a rule needs at least one destination AE")
    if rule.schedule == RoutingRule.Schedule.WINDOW and (rule.window_from is None or rule.window_to is None):
        raise RuleError("a window needs its start and end times (HH:MM)")
    if rule.schedule == RoutingRule.Schedule.WINDOW and rule.window_from == rule.window_to:
        raise RuleError("a window's start and end must differ")
    if rule.schedule == RoutingRule.Schedule.DAILY and rule.daily_at is None:
        raise RuleError("a daily rule needs its time (HH:MM)")
    if not 1 <= rule.max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise RuleError(f"attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")


def _command_user(acting_user) -> str:
    """Who the journal names when no person acts: the command line (`manage.py routes`)."""
    return "" if acting_user is not None else "manage.py routes"


def describe(rule: RoutingRule, destinations) -> str:
    flags = [f"priority {rule.priority}", "enabled" if rule.enabled else "disabled",
             f"{count(rule.max_attempts, 'attempt', 'attempts')}"] + (["auto-purge"] if rule.auto_purge else [])
    return (f"{rule.match_text()} -> {', '.join(d.ae_title for d in destinations)}, {rule.schedule_text()} "
            f"({', '.join(flags)})")


def do_save_rule(rule: RoutingRule, destinations, *, acting_user, request=None) -> RoutingRule:
    """Create or change a rule (System Administration, checked by the caller)."""
    destinations = list(destinations)
    rule.source_ae_pattern = rule.source_ae_pattern.strip()
    rule.match_keyword = rule.match_keyword.strip()
    rule.match_pattern = rule.match_pattern.strip()
    check_rule(rule, destinations)
    created = rule.pk is None
    with transaction.atomic():
        rule.save()
        rule.destinations.set(destinations)
        record(Action.CONFIGURATION, request=request, user=acting_user, username=_command_user(acting_user),
               target=f"routing rule {rule.name} {'added' if created else 'changed'}",
               detail=describe(rule, destinations))
    return rule


def do_remove_rule(rule: RoutingRule, *, acting_user, request=None) -> int:
    """Remove a rule; its unfinished jobs are cancelled with it. The number cancelled."""
    with transaction.atomic():
        cancelled = Job.objects.filter(rule=rule, state__in=Job.UNFINISHED).update(
            state=Job.State.CANCELLED, claimed_by="", lease_until=None, finished_at=clock.now(),
            message=f"cancelled: routing rule {rule.name} was removed")
        record(Action.CONFIGURATION, request=request, user=acting_user, username=_command_user(acting_user),
               target=f"routing rule {rule.name} removed",
               detail=describe(rule, rule.destinations.all()) + f"; {count(cancelled, 'unfinished job', 'unfinished jobs')} cancelled")
        rule.delete()
    return cancelled


@dataclass
class PreviewRow:
    study: object
    instances: int


def preview(rule: RoutingRule, studies, days: int = 7, limit: int = 200) -> list[PreviewRow]:
    """Which of the recent `studies` (received in the last `days`, newest first; the caller
    passes those its user may see) the rule would have matched, and with how many instances."""
    from .matching import selected_instances

    since = clock.now() - datetime.timedelta(days=days)
    rows = []
    for study in studies.filter(received_at__gte=since).order_by("-received_at")[:limit]:
        if study_matches(rule, study):
            rows.append(PreviewRow(study, selected_instances(rule, study).count()))
    return rows


def destinations_named(titles: list[str]) -> list[RemoteAE]:
    """The registered AEs with these titles; RuleError naming any that is not registered."""
    found = {ae.ae_title: ae for ae in RemoteAE.objects.filter(ae_title__in=titles)}
    missing = [title for title in titles if title not in found]
    if missing:
        raise RuleError(f"not a registered remote AE: {', '.join(missing)}")
    return [found[title] for title in titles]
