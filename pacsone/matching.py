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


def date_range_q(field: str, value: str) -> Q:
    """A DICOM date or range: `D`, `A-B`, `-B`, `A-`. Raises ValueError on a malformed value."""
    value = value.strip()
    if not value:
        return Q()
    # An ISO date contains dashes itself: try it whole first.
    single = parse_date(value)
    if single is not None:
        return Q(**{field: single})
    start_text, sep, end_text = value.partition("-") if "-" in value and len(value.split("-")) == 2 else ("", "", "")
    if not sep:
        raise ValueError(f"{value!r} is not a date or a date range (YYYYMMDD-YYYYMMDD)")
    condition = Q()
    if start_text:
        start = parse_date(start_text)
        if start is None:
            raise ValueError(f"{start_text!r} is not a date (YYYYMMDD)")
        condition &= Q(**{f"{field}__gte": start})
    if end_text:
        end = parse_date(end_text)
        if end is None:
            raise ValueError(f"{end_text!r} is not a date (YYYYMMDD)")
        condition &= Q(**{f"{field}__lte": end})
    if not start_text and not end_text:
        raise ValueError("a date range needs at least one end")
    return condition
