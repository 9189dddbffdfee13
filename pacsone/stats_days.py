"""Days of the statistics, in the server's time zone (PACS_TIME_ZONE, summer time included):
a requested period and its buckets (days; ISO weeks from Monday; months), the checks on a
requested period, and LocalPart, the local day or hour of a stored time in plain SQL."""

import datetime
from dataclasses import dataclass

from django.db.models import CharField, Func, IntegerField
from django.utils import timezone

BY_CHOICES = ("day", "week", "month")
# The most buckets one request may ask for: a bounded answer and a bounded query.
MAX_BUCKETS = {"day": 731, "week": 530, "month": 240}


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
