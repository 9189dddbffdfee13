"""Every django-q2 schedule, in one list, created or corrected at every start (`setuppacs`,
`runpacs`): a schedule whose entry changed is updated, one no longer wanted is removed.

Once per schedule, however many nodes: every node runs a django-q2 cluster, and each cluster's
scheduler looks for due schedules. django-q2 (1.11, django_q/scheduler.py) reads them with
SELECT ... FOR UPDATE inside one transaction and moves `next_run` on before committing, so on
PostgreSQL and MariaDB a second cluster waits for the first and then no longer sees the schedule
as due. We do not rely on that alone: each schedule calls `run_once(func, intended=...)`, which
first inserts a ScheduleRun row for (function, intended run time) under a unique constraint; the
cluster that loses that insert runs nothing.

An entry: name, dotted function, minutes between runs (django-q2 MINUTES), or another
django-q2 schedule type with its first run; `wanted` says whether it applies with these
settings (e.g. auto-scan only with PACS_AUTOSCAN_DIR).
"""

import datetime
import logging
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

RUNS_KEPT_DAYS = 7


@dataclass(frozen=True)
class Entry:
    name: str
    func: str
    schedule_type: str = "I"  # django_q.models.Schedule.MINUTES
    minutes: Callable[[], int] | int | None = None
    first_run: Callable[[], datetime.datetime] | None = None
    wanted: Callable[[], bool] = lambda: True
    prepare: Callable[[], None] | None = None  # run before the schedule is kept


def _make_autoscan_folder() -> None:
    from pathlib import Path

    Path(settings.PACS_AUTOSCAN_DIR).mkdir(parents=True, exist_ok=True)


def _next_hour() -> datetime.datetime:
    return (timezone.now() + datetime.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def _first_of_next_month() -> datetime.datetime:
    first = (timezone.localdate().replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return timezone.make_aware(datetime.datetime.combine(first, datetime.time(1, 0)))


def _local_at(day: datetime.date, hour: int, minute: int) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


def _tomorrow_at(hour: int, minute: int) -> Callable[[], datetime.datetime]:
    return lambda: _local_at(timezone.localdate() + datetime.timedelta(days=1), hour, minute)


def _next_monday_early() -> datetime.datetime:
    today = timezone.localdate()
    return _local_at(today + datetime.timedelta(days=7 - today.weekday()), 0, 45)


def _first_of_next_month_early() -> datetime.datetime:
    return _first_of_next_month().replace(hour=1, minute=15)


ENTRIES = [
    Entry("job dispatcher", "routing.runner.dispatch", minutes=1),
    Entry("lost ingest follow-ups", "pacsone.tasks.requeue_lost_follow_ups", minutes=1),
    Entry("auto-scan import", "pacsone.autoscan.run_scheduled_scan",
          minutes=lambda: settings.PACS_AUTOSCAN_MINUTES, wanted=lambda: bool(settings.PACS_AUTOSCAN_DIR), prepare=_make_autoscan_folder),
    Entry("journal idle sessions", "accounts.sessions.journal_expired_sessions", minutes=1),
    Entry("remote-study-sync", "pacsone.dicom.remote.run_due_syncs", schedule_type="H", first_run=_next_hour),
    Entry("empty the trash", "pacsone.deletion.empty_expired_trash", schedule_type="D"),
    Entry("purge watermarks", "routing.purge.check_watermarks", minutes=5),
    Entry("statistics rollup", "pacsone.stats_rollup.roll_up_recent", schedule_type="D", first_run=_tomorrow_at(0, 10)),  # before the daily report (00:30)
    Entry("monthly journal report", "audit.report.send_monthly_report", schedule_type="M",
          first_run=_first_of_next_month),
    # The statistics reports (each queues a job when its switch on the e-mail settings is on).
    Entry("daily statistics report", "pacsone.stats_report.queue_daily_report", schedule_type="D",
          first_run=_tomorrow_at(0, 30)),
    Entry("weekly statistics report", "pacsone.stats_report.queue_weekly_report", schedule_type="W",
          first_run=_next_monday_early),
    Entry("monthly statistics report", "pacsone.stats_report.queue_monthly_report", schedule_type="M",
          first_run=_first_of_next_month_early),
]


def ensure_schedules(entries: list[Entry] = ENTRIES) -> list[str]:
    """Create or correct each wanted schedule, delete the unwanted ones; their names."""
    from django_q.models import Schedule

    kept = []
    for entry in entries:
        if not entry.wanted():
            Schedule.objects.filter(name=entry.name).delete()
            continue
        if entry.prepare:
            entry.prepare()
        minutes = entry.minutes() if callable(entry.minutes) else entry.minutes
        wanted = {"func": "pacsone.schedules.run_once", "args": repr(entry.func), "intended_date_kwarg": "intended",
                  "schedule_type": entry.schedule_type, "minutes": minutes, "repeats": -1}
        same_name = Schedule.objects.filter(name=entry.name).order_by("pk")
        schedule = same_name.first()
        if schedule is None:
            Schedule.objects.create(name=entry.name, next_run=entry.first_run() if entry.first_run else timezone.now(),
                                    **wanted)
            schedule = same_name.first()  # another node's, when it made one meanwhile
        elif any(getattr(schedule, field) != value for field, value in wanted.items()):
            Schedule.objects.filter(pk=schedule.pk).update(**wanted)
        # Nodes starting at once may each create the schedule (its name is not unique): every node
        # keeps the first made, so that however their steps interleave, one is left.
        same_name.filter(pk__gt=schedule.pk).delete()
        kept.append(entry.name)
    return kept


def run_once(func: str, intended: str | None = None):
    """A schedule's task: run `func` unless another node's cluster ran it for this intended
    time already. `intended` is the schedule's `next_run` that django-q2 passes."""
    from .models import ScheduleRun

    when = parse_datetime(intended) if intended else None
    if when is None:
        return import_string(func)()  # called by hand: no schedule time to share
    try:
        with transaction.atomic():
            ScheduleRun.objects.create(func=func[:200], intended=when, node=settings.PACS_NODE_NAME)
    except IntegrityError:
        winner = ScheduleRun.objects.filter(func=func[:200], intended=when).values_list("node", flat=True).first()
        log.info("schedule already run func=%s intended=%s node=%s", func, intended, winner)
        return f"already run by node {winner}"
    ScheduleRun.objects.filter(func=func[:200], intended__lt=when - datetime.timedelta(days=RUNS_KEPT_DAYS)).delete()
    return import_string(func)()
