"""Archive-wide figures: what `archivestats`, /healthz and the dashboards report; and the
statistics of a period (the statistics page, /api/statistics/, the e-mailed reports).

Everything comes from the index, never from the stored files: aggregate queries (COUNT, SUM,
GROUP BY the UTC hour) that SQLite, MariaDB and PostgreSQL all run in plain SQL; the hours are
then put into days, weeks (ISO, from Monday) and months of the server's time zone
(PACS_TIME_ZONE) in Python (quarter hours for a zone whose offset is not whole hours), so no
database needs time zone tables and no per-row time zone function runs.

Studies, series, instances and bytes are counted by the time their study was first received,
from the counts kept on each study's row: one indexed query over the studies of the period,
whatever the number of instances (a study that received more images days later counts them on
its first day). By modality counts series received in the period. A period's figures count what
is still in the index: a study purged or deleted since is gone from them (the journal keeps the
record of what happened).
"""

import datetime
from dataclasses import dataclass

from django.db.models import CharField, Count, Func, Sum
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


class UtcSlot(Func):
    """The UTC hour (`YYYY-MM-DD HH`) or quarter hour (`YYYY-MM-DD HH:Q`, Q 0 to 3) of a stored
    time, computed in plain SQL on each database: grouping by it needs no per-row time zone
    function (SQLite's Trunc is a Python function called for every row: seconds at a million
    instances). Python then puts each slot into its local day, week, month and hour."""

    output_field = CharField()

    def __init__(self, expression, quarters: bool):
        super().__init__(expression)
        self.quarters = quarters

    def as_sqlite(self, compiler, connection):
        quarter = " || ':' || (CAST(substr(%(expressions)s, 15, 2) AS INTEGER) / 15)" if self.quarters else ""
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 13)" + quarter)

    def as_postgresql(self, compiler, connection):
        utc = "(%(expressions)s AT TIME ZONE 'UTC')"
        quarter = f" || ':' || (EXTRACT(MINUTE FROM {utc})::int / 15)" if self.quarters else ""
        return self.as_sql(compiler, connection, template=f"to_char({utc}, 'YYYY-MM-DD HH24')" + quarter)

    def as_mysql(self, compiler, connection):  # Django keeps MySQL/MariaDB datetimes in UTC
        hour = "DATE_FORMAT(%(expressions)s, '%%%%Y-%%%%m-%%%%d %%%%H')"
        if self.quarters:
            return self.as_sql(compiler, connection, template=f"CONCAT({hour}, ':', MINUTE(%(expressions)s) DIV 15)")
        return self.as_sql(compiler, connection, template=hour)


def _whole_hour_offsets(period: "Period") -> bool:
    """Does every local midnight of the period fall on a UTC hour (then hour slots are exact)?"""
    tz = timezone.get_current_timezone()
    day = period.first
    while day <= period.last + datetime.timedelta(days=1):
        midnight = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min), tz)
        if midnight.utcoffset().total_seconds() % 3600:
            return False
        day += datetime.timedelta(days=1)
    return True


def _local_slots(queryset, measures: dict, quarters: bool):
    """(local time of the slot's start, its measures) for each UTC slot with rows."""
    tz = timezone.get_current_timezone()
    names = list(measures)
    rows = queryset.annotate(slot=UtcSlot("received_at", quarters)).values("slot").annotate(**measures).order_by()
    for slot, *values in rows.values_list("slot", *names):
        start = datetime.datetime(int(slot[0:4]), int(slot[5:7]), int(slot[8:10]), int(slot[11:13]), tzinfo=datetime.timezone.utc)
        if len(slot) > 13:
            start += datetime.timedelta(minutes=15 * int(slot[14:]))
        yield start.astimezone(tz), dict(zip(names, (value or 0 for value in values)))


def _timeline_and_hours(period: Period, studies) -> tuple[list[dict], list[int]]:
    rows = {bucket: {"period": bucket, "studies": 0, "series": 0, "instances": 0, "bytes": 0}
            for bucket in period.buckets()}
    hours = [0] * 24
    for local, values in _local_slots(studies, STUDY_MEASURES, quarters=not _whole_hour_offsets(period)):
        target = rows[bucket_start(local.date(), period.by)]
        for key, value in values.items():
            target[key] += value
        hours[local.hour] += values["instances"]
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
        "refused_stores": _top(refused, "ae_title", {"count": Count("*")}, "count"),
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
