"""DICOM-style matching of text and dates, as ORM conditions that use the indexes.

Wildcards: `*` any run of characters, `?` one character (PS3.4 C.2.2.2.4). A pattern whose only
wildcard is a trailing `*` becomes a prefix match (LIKE 'abc%', index-friendly); other patterns
become an anchored regular expression.

Patterns are bounded (PACS_MATCH_MAX_WILDCARDS, PACS_MATCH_MAX_LENGTH): a longer one raises
PatternError, which every interface turns into a clear refusal. The regular expression is built
so that it cannot backtrack without end: `*A*A*A*A*A*A*A*B` against 64 `A`s took SQLite (whose
REGEXP is Python's `re`) 15 s as `^.*A.*A...B$`. Each middle run is taken at its leftmost
occurrence inside an atomic group, `(?>.*?A)`, which is exact for `*` and `?` patterns (a later
occurrence never leaves more room for what follows) and linear in the value's length.
PostgreSQL's regular expressions have no atomic groups and need none (they do not backtrack).

On MariaDB, Django writes a case-sensitive regex as `REGEXP BINARY`, which compares bytes: `?`
(`.`) then matches one byte, not the two of `É` in UTF-8, and `B?RANGER` misses `BÉRANGER`.
There the pattern is matched with the column's collation (PCRE in UTF-8 mode, a character per
`.`) and made case-sensitive inside the expression, `(?-i)`.
"""

import datetime
import re

from django.conf import settings
from django.db import connection
from django.db.models import Q


class PatternError(ValueError):
    """A wildcard pattern over the configured bounds."""


def has_wildcards(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def collapse_stars(pattern: str) -> str:
    """`**` means the same as `*`."""
    return re.sub(r"\*{2,}", "*", pattern)


def check_pattern(pattern: str) -> str:
    """The pattern with runs of `*` collapsed; PatternError when it has more wildcards or
    characters than the settings allow. A value without wildcards is not a pattern."""
    pattern = collapse_stars(pattern)
    if not has_wildcards(pattern):
        return pattern
    wildcards = pattern.count("*") + pattern.count("?")
    if wildcards > settings.PACS_MATCH_MAX_WILDCARDS:
        raise PatternError(f"at most {settings.PACS_MATCH_MAX_WILDCARDS} wildcards (* or ?) per value")
    if len(pattern) > settings.PACS_MATCH_MAX_LENGTH:
        raise PatternError(f"a pattern has at most {settings.PACS_MATCH_MAX_LENGTH} characters")
    return pattern


def _literal(run: str) -> str:
    return "".join("." if c == "?" else re.escape(c) for c in run)


def pattern_regex(pattern: str, atomic: bool = True) -> str:
    """An anchored regular expression for a `*`/`?` pattern; with `atomic`, one that matches in
    linear time on a backtracking engine (see the module's docstring)."""
    runs = pattern.split("*")
    if len(runs) == 1:
        return "^" + _literal(pattern) + "$"
    first, middles, last = runs[0], runs[1:-1], runs[-1]
    if atomic:
        middle = "".join(f"(?>.*?{_literal(run)})" for run in middles if run)
    else:
        middle = "".join(f".*{_literal(run)}" for run in middles if run)
    return "^" + _literal(first) + middle + ".*" + _literal(last) + "$"


def wildcard_q(field: str, pattern: str, case_insensitive: bool = False) -> Q:
    """`field` matches `pattern` (with * and ?); an empty pattern or a lone `*` matches all.
    PatternError when the pattern is over the bounds."""
    pattern = check_pattern(pattern)
    if pattern in ("", "*"):
        return Q()
    if case_insensitive and not pattern.isascii():
        return unicode_insensitive_q(field, pattern)
    prefix = "i" if case_insensitive else ""
    if not has_wildcards(pattern):
        return Q(**{f"{field}__{prefix}exact": pattern})
    body = pattern.rstrip("*")
    if not has_wildcards(body):
        return Q(**{f"{field}__{prefix}startswith": body})
    return regex_q(field, pattern_regex(pattern, atomic=connection.vendor != "postgresql"), case_insensitive)


def regex_q(field: str, regex: str, case_insensitive: bool = False) -> Q:
    """`field` matches the regular expression, a character per `.` on every database."""
    if case_insensitive:
        return Q(**{f"{field}__iregex": regex})
    if connection.vendor == "mysql" and connection.mysql_is_mariadb:
        return Q(**{f"{field}__iregex": "(?-i)" + regex})  # not REGEXP BINARY: see the docstring
    return Q(**{f"{field}__regex": regex})


def unicode_insensitive_q(field: str, pattern: str) -> Q:
    """Case-insensitive matching of a non-ASCII pattern (`müller*` finds `MÜLLER^JÜRGEN`).
    SQLite's LIKE folds ASCII letters only; its REGEXP is Python's `re`, whose IGNORECASE folds
    every letter (MariaDB's and PostgreSQL's case-insensitive regexps do too). A scan: only
    non-ASCII patterns take this way."""
    return Q(**{f"{field}__iregex": pattern_regex(pattern, atomic=connection.vendor != "postgresql")})


# Where a person name's ideographic and phonetic groups start (PS3.5 6.2.1.2): CJK, kana and
# Hangul all lie above U+1100; alphabetic groups (Latin, Greek, Cyrillic, Arabic, Hebrew) below.
IDEOGRAPHIC_OR_PHONETIC_FROM = 0x1100


def person_name_q(field: str, pattern: str, match) -> Q:
    """`field`, a person name as received (`Yamada^Tarou=山田^太郎=やまだ^たろう`), matches
    `pattern` by `match(field, pattern) -> Q` on the whole value or on one component group.

    The index keeps the whole value (what the sender sent, shown as it is and returned by
    C-FIND); searches find it by any group a user would type: the whole value; the alphabetic
    group, which starts the value (`Yamada*`, or `Yamada^Tarou` exactly: the value up to its
    first `=`), both from the column's index; and, for a pattern in ideographic or phonetic
    script only (`山田*`, `やまだ^たろう`), the group after an `=`, which needs a scan.
    The user's pattern is bounded as any (PatternError); the group forms add at most two
    wildcards of ours and are left out where those would pass the bounds."""
    if pattern.strip("*") == "":
        return Q()
    condition = match(field, pattern)
    if "=" in pattern:
        return condition  # the user wrote the groups: the whole value is matched
    groups = []
    if not pattern.endswith("*"):
        groups.append(pattern + "=*")
    if any(ord(c) >= IDEOGRAPHIC_OR_PHONETIC_FROM for c in pattern):
        groups.append("*=" + pattern)
        if not pattern.endswith("*"):
            groups.append("*=" + pattern + "=*")
    for group_pattern in groups:
        try:
            check_pattern(group_pattern)
        except PatternError:
            continue
        condition |= match(field, group_pattern)
    return condition


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
