"""The statistics rollup: each past day's figures, kept in StatsFigure so that a year of
statistics reads a few thousand small rows instead of every study and series of the year.

A past day is rolled up from the index the first time a period asks for it (or by the nightly
schedule), with the same grouped queries the live figures use; today is always read live. A
day's figures are fresh while nothing changed its studies or series since its rollup began
reading the index: whatever changes them afterwards (ingest into an older study, an edit, a
deletion, a purge) calls `days_changed`, which stamps StatsDay.changed_at, and the next request
rolls the day up again. The stamp is written even for a day not yet rolled up, so that a rollup
running at the same time as the change is never taken as fresh.
"""

import datetime
import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from .models import Series, StatsDay, StatsFigure, Study
from .stats_days import LocalPart, Period

log = logging.getLogger(__name__)

MEASURES = ("studies", "series", "instances", "bytes")
# The breakdowns of a day and the study column each reads; `modality` reads series.
STUDY_DIMENSIONS = {"source_ae": "source_ae", "institution": "institution_name", "physician": "referring_physician_name"}
NIGHTLY_DAYS = 400  # the nightly schedule keeps this many past days rolled up


def _day(value: str | datetime.date) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)


def compute_rows(first: datetime.date, last: datetime.date) -> list[StatsFigure]:
    """The figures of the days `first`..`last` from the index (unsaved rows)."""
    period = Period(first, last)
    start, end = period.bounds()
    studies = Study.objects.filter(received_at__gte=start, received_at__lt=end).order_by()
    rows = []
    by_hour = (studies.annotate(day=LocalPart("received_at", "day", period), hour=LocalPart("received_at", "hour", period))
               .values("day", "hour").annotate(studies=Count("*"), series=Sum("number_of_series"),
                                               instances=Sum("number_of_instances"), bytes=Sum("size_bytes")))
    for row in by_hour:
        rows.append(StatsFigure(day=_day(row["day"]), dimension="hour", label=f"{int(row['hour']):02d}",
                                **{key: row[key] or 0 for key in MEASURES}))
    for dimension, column in STUDY_DIMENSIONS.items():
        grouped = (studies.annotate(day=LocalPart("received_at", "day", period)).values("day", column)
                   .annotate(studies=Count("*"), instances=Sum("number_of_instances"), bytes=Sum("size_bytes")))
        for row in grouped:
            rows.append(StatsFigure(day=_day(row["day"]), dimension=dimension, label=row[column] or "",
                                    studies=row["studies"], instances=row["instances"] or 0, bytes=row["bytes"] or 0))
    series = (Series.objects.filter(received_at__gte=start, received_at__lt=end).order_by()
              .annotate(day=LocalPart("received_at", "day", period)).values("day", "modality")
              .annotate(series=Count("*"), instances=Sum("number_of_instances")))
    for row in series:
        rows.append(StatsFigure(day=_day(row["day"]), dimension="modality", label=row["modality"] or "",
                                series=row["series"], instances=row["instances"] or 0))
    return rows


def _runs(days: list[datetime.date]) -> list[tuple[datetime.date, datetime.date]]:
    """Consecutive days gathered into (first, last) runs: one set of queries per run."""
    runs = []
    for day in sorted(days):
        if runs and runs[-1][1] + datetime.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _fresh_days(first: datetime.date, last: datetime.date, zone: str) -> set[datetime.date]:
    return set(StatsDay.objects.filter(day__gte=first, day__lte=last, time_zone=zone, rolled_from__isnull=False)
               .filter(Q(changed_at__isnull=True) | Q(changed_at__lt=F("rolled_from"))).values_list("day", flat=True))


def _store(first: datetime.date, last: datetime.date, rows: list[StatsFigure], began: datetime.datetime, zone: str) -> None:
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    try:
        with transaction.atomic():
            StatsFigure.objects.filter(day__gte=first, day__lte=last).delete()
            StatsFigure.objects.bulk_create(rows, batch_size=2000)
            StatsDay.objects.bulk_create([StatsDay(day=day) for day in days], ignore_conflicts=True)
            # changed_at is left as it is: a change stamped after `began` keeps the day stale.
            StatsDay.objects.filter(day__gte=first, day__lte=last).update(rolled_from=began, time_zone=zone)
    except IntegrityError:
        log.info("statistics rollup of %s..%s made by another request at the same time", first, last)


def roll_up(first: datetime.date, last: datetime.date) -> int:
    """Roll up the days of `first`..`last` before today that are not fresh; how many were."""
    last = min(last, timezone.localdate() - datetime.timedelta(days=1))
    if last < first:
        return 0
    zone = timezone.get_current_timezone_name()
    fresh = _fresh_days(first, last, zone)
    stale = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    stale = [day for day in stale if day not in fresh]
    for run_first, run_last in _runs(stale):
        began = timezone.now()
        _store(run_first, run_last, compute_rows(run_first, run_last), began, zone)
    if stale:
        log.info("statistics rolled up days=%d from=%s to=%s", len(stale), stale[0], stale[-1])
    return len(stale)


def roll_up_recent() -> str:
    """The nightly schedule: yesterday and any stale day of the last NIGHTLY_DAYS."""
    today = timezone.localdate()
    rolled = roll_up(today - datetime.timedelta(days=NIGHTLY_DAYS), today)
    return f"{rolled} days rolled up"


def days_changed(days: Iterable[datetime.date]) -> None:
    """The studies or series received on these local days changed: their rollup is stale. The
    stamp is written once the change is committed (a rollup that began before the stamp but
    read the index before the commit would otherwise be taken as fresh)."""
    past = sorted({day for day in days if day < timezone.localdate()})
    if past:
        transaction.on_commit(lambda: _stamp_changed(past))


def _stamp_changed(days: list[datetime.date]) -> None:
    now = timezone.now()
    StatsDay.objects.bulk_create([StatsDay(day=day, changed_at=now) for day in days], ignore_conflicts=True)
    StatsDay.objects.filter(day__in=days).update(changed_at=now)


def study_days(study_pks: Iterable[int]) -> set[datetime.date]:
    """The local days the studies and their series were received on."""
    pks = list(study_pks)
    times = list(Study.objects.filter(pk__in=pks).values_list("received_at", flat=True))
    times += list(Series.objects.filter(study__in=pks).values_list("received_at", flat=True))
    return {timezone.localdate(when) for when in times if when}


def studies_changed(study_pks: Iterable[int]) -> None:
    days_changed(study_days(study_pks))


def figures(first: datetime.date, last: datetime.date) -> tuple[dict[datetime.date, dict], dict[str, dict[str, dict]]]:
    """The figures of `first`..`last`: the measures of each day that received anything, and the
    measures of each label of each breakdown over the whole period (hours as "00".."23").
    Past days come from the rollup (rolled up first where needed), today from the index."""
    roll_up(first, last)
    by_day: dict[datetime.date, dict] = {}
    for row in (StatsFigure.objects.filter(day__gte=first, day__lte=last, dimension="hour").values("day")
                .annotate(**{key: Sum(key) for key in MEASURES}).order_by()):
        by_day[row.pop("day")] = row
    breakdowns: dict[str, dict[str, dict]] = defaultdict(dict)
    for row in (StatsFigure.objects.filter(day__gte=first, day__lte=last).values("dimension", "label")
                .annotate(**{key: Sum(key) for key in MEASURES}).order_by()):
        breakdowns[row.pop("dimension")][row.pop("label")] = row
    today = timezone.localdate()
    if first <= today <= last:
        for figure in compute_rows(today, today):
            values = {key: getattr(figure, key) for key in MEASURES}
            targets = [breakdowns[figure.dimension].setdefault(figure.label, dict.fromkeys(MEASURES, 0))]
            if figure.dimension == "hour":
                targets.append(by_day.setdefault(figure.day, dict.fromkeys(MEASURES, 0)))
            for target in targets:
                for key, value in values.items():
                    target[key] = (target[key] or 0) + value
    return by_day, breakdowns
