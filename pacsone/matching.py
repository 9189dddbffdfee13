"""DICOM-style matching of text and dates, as ORM conditions that use the indexes.

Wildcards: `*` any run of characters, `?` one character (PS3.4 C.2.2.2.4). A pattern whose only
wildcard is a trailing `*` becomes a prefix match (LIKE 'abc%', index-friendly); other patterns
become an anchored regular expression.
"""

import datetime
import re

from django.db.models import Q


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def wildcard_q(field: str, pattern: str, case_insensitive: bool = False) -> Q:
    """`field` matches `pattern` (with * and ?); an empty pattern or a lone `*` matches all."""
    if pattern in ("", "*"):
        return Q()
    prefix = "i" if case_insensitive else ""
    if not has_wildcards(pattern):
        return Q(**{f"{field}__{prefix}exact": pattern})
    body = pattern.rstrip("*")
    if not has_wildcards(body):
        return Q(**{f"{field}__{prefix}startswith": body})
    regex = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return Q(**{f"{field}__{prefix}regex": regex})


def parse_date(value: str) -> datetime.date | None:
    """YYYYMMDD (DICOM) or YYYY-MM-DD; None if neither."""
    value = value.strip()
    for layout in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(value, layout).date()
        except ValueError:
            continue
    return None


def range_parts(value: str) -> tuple[str, str] | None:
    """A DICOM range: 'A-B' -> ('A', 'B'), '-B' -> ('', 'B'), 'A-' -> ('A', ''); None for a
    single value; ValueError for more than one dash."""
    if "-" not in value:
        return None
    start, _, end = value.partition("-")
    if "-" in end:
        raise ValueError(f"bad range {value!r}")
    return start.strip(), end.strip()


def dicom_date(text: str) -> datetime.date:
    """YYYYMMDD only (a range's end); ValueError otherwise."""
    day = parse_date(text)
    if day is None or "-" in text:
        raise ValueError(f"{text!r} is not a date (YYYYMMDD)")
    return day


def date_range_q(field: str, value: str) -> Q:
    """A date (DICOM, or ISO as web forms send it) or a DICOM range `A-B`, `-B`, `A-`.
    Raises ValueError on a malformed value."""
    value = value.strip()
    if not value:
        return Q()
    # An ISO date contains dashes itself: try it whole first.
    single = parse_date(value)
    if single is not None:
        return Q(**{field: single})
    try:
        parts = range_parts(value)
    except ValueError:
        parts = None
    if parts is None:
        raise ValueError(f"{value!r} is not a date or a date range (YYYYMMDD-YYYYMMDD)")
    start, end = parts
    if not start and not end:
        raise ValueError("a date range needs at least one end")
    condition = Q()
    if start:
        condition &= Q(**{f"{field}__gte": dicom_date(start)})
    if end:
        condition &= Q(**{f"{field}__lte": dicom_date(end)})
    return condition
