"""Archive-wide figures: what `archivestats`, /healthz and the dashboards report; and the
statistics of a period (the statistics page, /api/statistics/, the e-mailed reports).

Everything comes from the index, never from the stored files: aggregate queries (COUNT, SUM,
GROUP BY the local day or hour) that SQLite, MariaDB and PostgreSQL all run in plain SQL (see
LocalPart); days are then gathered into weeks (ISO, from Monday) and months. Days and hours are
those of the server's time zone (PACS_TIME_ZONE), summer time included.

Studies, series, instances and bytes are counted by the time their study was first received,
from the counts kept on each study's row: one indexed query over the studies of the period,
whatever the number of instances (a study that received more images days later counts them on
its first day). By modality counts series received in the period. A period's figures count what
is still in the index: a study purged or deleted since is gone from them (the journal keeps the
record of what happened).
"""

import datetime
from dataclasses import dataclass

from django.db.models import CharField, Count, Func, IntegerField, Sum
from django.utils import timezone

from .models import Instance, Patient, Series, StorageLocation, Study

BY_CHOICES = ("day", "week", "month")
# The most buckets one request may ask for: a bounded answer and a bounded query.
MAX_BUCKETS = {"day": 731, "week": 530, "month": 240}
TOP = 20  # rows per breakdown (modality, AE, institution, physician); the rest are "others"
NONE_LABEL = "(none)"
REFUSED_ACTIONS = ("store", "import", "upload")
# A study's counts are kept on its row (pacsone/study_counts.py): the timeline reads only studies.
STUDY_MEASURES = {"studies": Count("*"), "series": Sum("number_of_series"), "instances": Sum("number_of_instances"),
                  "bytes": Sum("size_bytes")}


def archive_stats() -> dict[str, int]:
    return {
        "patients": Patient.objects.count(),
        "studies": Study.objects.count(),
        "series": Series.objects.count(),
        "instances": Instance.objects.count(),
        "bytes": Instance.objects.aggregate(total=Sum("file_size"))["total"] or 0,
    }


def bucket_start(day: datetime.date, by: str) -> datetime.date:
    if by == "week":
        return day - datetime.timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start: datetime.date, by: str) -> datetime.date:
    if by == "week":
        return start + datetime.timedelta(days=7)
    if by == "month":
        return (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return start + datetime.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """From `first` to `last` (both included, days in the server's time zone), in buckets of `by`."""

    first: datetime.date
    last: datetime.date
    by: str = "day"

    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        tz = timezone.get_current_timezone()
        return (timezone.make_aware(datetime.datetime.combine(self.first, datetime.time.min), tz),
                timezone.make_aware(datetime.datetime.combine(self.last + datetime.timedelta(days=1), datetime.time.min), tz))

    def buckets(self) -> list[datetime.date]:
        days, start = [], bucket_start(self.first, self.by)
        while start <= self.last:
            days.append(start)
            start = _next_bucket(start, self.by)
        return days

    def bucket_count(self) -> int:
        if self.by == "month":
            return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        if self.by == "week":
            return (bucket_start(self.last, "week") - bucket_start(self.first, "week")).days // 7 + 1
        return (self.last - self.first).days + 1

    def as_dict(self) -> dict:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "by": self.by}


def period_problems(first: datetime.date | None, last: datetime.date | None, by: str) -> dict[str, str]:
    """What is wrong with a requested period, by field (empty when it can be answered)."""
    problems = {}
    if by not in BY_CHOICES:
        problems["by"] = f"{by!r} is not one of: {', '.join(BY_CHOICES)}."
    if first and last and first > last:
        problems["to"] = "The end is before the start."
    elif first and last and by in BY_CHOICES and (count := Period(first, last, by).bucket_count()) > MAX_BUCKETS[by]:
        problems["to"] = (f"{count} {by}s is too many: at most {MAX_BUCKETS[by]} {by}s at once "
                          f"(choose a larger unit or a shorter period).")
    return problems


def offset_changes(period: Period) -> tuple[int, list[tuple[datetime.datetime, int]]]:
    """The server's time zone's offset from UTC (minutes) at the period's start, and each (UTC
    instant, new offset) where it changes within the period (summer time): found day by day,
    then to the quarter hour."""
    tz = timezone.get_current_timezone()

    def offset_at_local(day: datetime.date) -> int:
        return int(tz.utcoffset(datetime.datetime.combine(day, datetime.time.min)).total_seconds() // 60)

    def offset_at(instant: datetime.datetime) -> int:
        return int(instant.astimezone(tz).utcoffset().total_seconds() // 60)

    first = current = offset_at_local(period.first)
    changes, day = [], period.first
    while day <= period.last:
        following = day + datetime.timedelta(days=1)
        if offset_at_local(following) != current:
            instant = datetime.datetime.combine(day, datetime.time.min, tz).astimezone(datetime.timezone.utc)
            while offset_at(instant) == current:
                instant += datetime.timedelta(minutes=15)
            current = offset_at(instant)
            changes.append((instant, current))
        day = following
    return first, changes


class LocalPart(Func):
    """The local day (`YYYY-MM-DD`) or hour (0-23) of a stored time, in plain SQL on each
    database: PostgreSQL converts with its own time zone data; SQLite and MariaDB add the
    offset (a CASE over the period's summer-time changes), so neither needs time zone tables
    nor a per-row Python function (SQLite's Trunc calls one for every row)."""

    def __init__(self, expression, part: str, period: Period):
        super().__init__(expression, output_field=CharField() if part == "day" else IntegerField())
        self.part = part
        self.first_offset, self.changes = offset_changes(period)

    def _offset_sql(self) -> tuple[str, list]:
        if not self.changes:
            return "%s", [self.first_offset]
        whens, params, previous = [], [], self.first_offset
        for instant, offset in self.changes:
            whens.append("WHEN {column} < %s THEN %s")
            params += [instant.strftime("%Y-%m-%d %H:%M:%S"), previous]
            previous = offset
        return "(CASE " + " ".join(whens) + " ELSE %s END)", params + [previous]

    def _column(self, compiler) -> str:
        column, params = compiler.compile(self.source_expressions[0])
        if params:
            raise ValueError("LocalPart takes a column")
        return column

    def as_sqlite(self, compiler, connection):
        column = self._column(compiler)
        if not self.changes and not self.first_offset:
            local, params = column, []
        else:
            offset, params = self._offset_sql()
            local = f"datetime({column}, {offset.format(column=column)} || ' minutes')"
        if self.part == "day":
            return f"substr({local}, 1, 10)", params
        return f"CAST(substr({local}, 12, 2) AS INTEGER)", params

    def as_mysql(self, compiler, connection):  # Django keeps MySQL/MariaDB datetimes in UTC
        column = self._column(compiler)
        offset, params = self._offset_sql()
        local = f"DATE_ADD({column}, INTERVAL {offset.format(column=column)} MINUTE)"
        if self.part == "day":
            return f"DATE_FORMAT({local}, '%%Y-%%m-%%d')", params
        return f"HOUR({local})", params

    def as_postgresql(self, compiler, connection):
        local = f"({self._column(compiler)} AT TIME ZONE %s)"
        params = [timezone.get_current_timezone_name()]
        if self.part == "day":
            return f"to_char({local}, 'YYYY-MM-DD')", params
        return f"EXTRACT(HOUR FROM {local})::integer", params


def _timeline_and_hours(period: Period, studies) -> tuple[list[dict], list[int]]:
    rows = {bucket: {"period": bucket, "studies": 0, "series": 0, "instances": 0, "bytes": 0}
            for bucket in period.buckets()}
    names = list(STUDY_MEASURES)
    by_day = studies.annotate(day=LocalPart("received_at", "day", period)).values("day").annotate(**STUDY_MEASURES)
    for day, *values in by_day.order_by().values_list("day", *names):
        target = rows[bucket_start(datetime.date.fromisoformat(day), period.by)]
        for key, value in zip(names, values):
            target[key] += value or 0
    hours = [0] * 24
    by_hour = studies.annotate(hour=LocalPart("received_at", "hour", period)).values("hour")
    for hour, instances in by_hour.annotate(instances=Sum("number_of_instances")).order_by().values_list("hour", "instances"):
        hours[int(hour)] += instances or 0
    return list(rows.values()), hours


def _top(queryset, field: str, measures: dict, order: str) -> list[dict]:
    """The TOP largest groups of `field` by `order`, then one "others" row with the rest."""
    grouped = list(queryset.values(field).annotate(**measures).order_by(f"-{order}", field))
    rows = [{"label": row.pop(field) or NONE_LABEL, **{k: v or 0 for k, v in row.items()}} for row in grouped[:TOP]]
    if len(grouped) > TOP:
        rest = grouped[TOP:]
        rows.append({"label": f"others ({len(rest)})", **{key: sum(row[key] or 0 for row in rest) for key in measures}})
    return rows


def storage_figures() -> list[dict]:
    """Per storage location: what the index says it holds, and the filesystem's used and free space."""
    from . import storage

    held = dict(Study.objects.values("storage_location").annotate(total=Sum("size_bytes")).order_by()
                .values_list("storage_location", "total"))
    rows = []
    for location in StorageLocation.objects.order_by("name"):
        row = {"location": location.name, "indexed_bytes": held.get(location.pk) or 0,
               "used_bytes": None, "free_bytes": None, "total_bytes": None, "problem": ""}
        try:
            usage = storage.usage(location)
            row.update(used_bytes=usage.used_bytes, free_bytes=usage.free_bytes, total_bytes=usage.total_bytes)
        except OSError as error:
            row["problem"] = error.strerror or str(error)
        rows.append(row)
    return rows


def _failures(start: datetime.datetime, end: datetime.datetime) -> dict:
    from audit.models import Entry
    from routing.models import Job

    failed_jobs = (Job.objects.filter(state=Job.State.FAILED, finished_at__gte=start, finished_at__lt=end)
                   .values("kind").annotate(count=Count("*")).order_by("-count", "kind"))
    refused = Entry.objects.filter(action__in=REFUSED_ACTIONS, outcome__in=("failure", "denied"),
                                   timestamp__gte=start, timestamp__lt=end)
    return {
        "failed_jobs": [{"kind": Job.Kind(row["kind"]).label if row["kind"] in Job.Kind.values else row["kind"],
                         "count": row["count"]} for row in failed_jobs],
        "refused_stores": [dict(row, label="(web or API)") if row["label"] == NONE_LABEL else row
                           for row in _top(refused, "ae_title", {"count": Count("*")}, "count")],
    }


def period_figures(period: Period) -> dict:
    """Every figure of the statistics page for `period`."""
    start, end = period.bounds()
    studies = Study.objects.filter(received_at__gte=start, received_at__lt=end)
    series = Series.objects.filter(received_at__gte=start, received_at__lt=end)
    timeline, hours = _timeline_and_hours(period, studies)
    study_measures = {"studies": Count("*"), "instances": Sum("number_of_instances"), "bytes": Sum("size_bytes")}
    failures = _failures(start, end)
    return {
        "period": period.as_dict(),
        "totals": {key: sum(row[key] for row in timeline) for key in ("studies", "series", "instances", "bytes")},
        "timeline": timeline,
        "by_modality": _top(series, "modality", {"series": Count("*"), "instances": Sum("number_of_instances")}, "instances"),
        "by_source_ae": _top(studies, "source_ae", study_measures, "studies"),
        "by_institution": _top(studies, "institution_name", study_measures, "studies"),
        "by_referring_physician": _top(studies, "referring_physician_name", study_measures, "studies"),
        "busiest_hours": [{"hour": hour, "instances": count} for hour, count in enumerate(hours)],
        "storage": storage_figures(),
        "failures": failures,
        "failed_jobs": sum(row["count"] for row in failures["failed_jobs"]),
        "refused_stores": sum(row["count"] for row in failures["refused_stores"]),
    }
