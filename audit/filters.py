"""One filter for the journal, used by its pages, its CSV export and the REST API."""

import datetime

from django.db.models import QuerySet
from django.utils import timezone

from .models import Entry

# parameter -> the column it must equal
EXACT_FILTERS = {"user": "username", "action": "action", "outcome": "outcome", "patient_id": "patient_id",
                 "study_uid": "study_uid"}


def _day(value: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        return None


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def filter_entries(params, entries: QuerySet | None = None) -> tuple[QuerySet, dict[str, str]]:
    """Apply the filters in `params` (a QueryDict or dict). Returns the entries and the
    problems found (field -> message), so a wrong date is reported, not silently ignored."""
    entries = Entry.objects.all() if entries is None else entries
    problems = {}
    for name, field in EXACT_FILTERS.items():
        value = (params.get(name) or "").strip()
        if value:
            entries = entries.filter(**{field: value})
    for name in ("date_from", "date_to"):
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        day = _day(raw)
        if day is None:
            problems[name] = f"{raw!r} is not a date (YYYY-MM-DD)"
        elif name == "date_from":
            entries = entries.filter(timestamp__gte=_start_of(day))
        else:
            entries = entries.filter(timestamp__lt=_start_of(day + datetime.timedelta(days=1)))
    return entries, problems
