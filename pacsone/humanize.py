"""How the interface shows values to people, in one place (issue 17): person names, patient age
and sex, dates and times, durations and counts. Pages use these through the template filters
of pacsone/templatetags/pacs_format.py; exports, e-mails and messages call them directly.

One format for dates and times everywhere: `2026-11-30` and `2026-11-30 08:15`, in the server's
time zone (PACS_TIME_ZONE), unambiguous in every locale.
"""

import datetime
import re

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

DATE_FORMAT = "%Y-%m-%d"
TIME_FORMAT = "%H:%M"
SEXES = {"M": gettext_lazy("male"), "F": gettext_lazy("female"), "O": gettext_lazy("other")}


def _proper(word: str) -> str:
    """JOHN -> John; names already in mixed case (McDonald, van der Berg) stay as written."""
    return word.title() if word.isupper() or word.islower() else word


def person_name(raw: str | None) -> str:
    """A DICOM person name (PS3.5 6.2: `Family^Given^Middle^Prefix^Suffix`, then `=` and its
    ideographic and phonetic groups) as people write it: `DOE, John`, `Dr ROE, Jane Q, MD`.
    Every component is kept; the other groups follow in parentheses. A name without `^`
    (`John Doe`, as some systems send it) is shown as it is."""
    raw = str(raw or "").strip()
    if not raw:
        return ""
    alphabetic, *others = raw.split("=")
    parts = [part.strip() for part in alphabetic.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    if "^" not in alphabetic:
        shown = alphabetic.strip()
    else:
        first_names = " ".join(_proper(word) for word in f"{given} {middle}".split())
        shown = ", ".join(part for part in (family, first_names) if part)
        if prefix:
            shown = f"{_proper(prefix)} {shown}"
        if suffix:
            shown = f"{shown}, {suffix}"
    extra = [group.replace("^", " ").strip() for group in others if group.replace("^", "").strip()]
    if extra:
        shown = f"{shown} ({' / '.join(extra)})" if shown else " / ".join(extra)
    return shown


def sex(code: str | None) -> str:
    code = (code or "").strip().upper()
    return str(SEXES.get(code, code))


def age(birth_date: datetime.date | None, on: datetime.date | None = None) -> str:
    """The age on a day (the study's, else today) as DICOM writes it in words: `42 y`,
    `8 mo` under 2 years, `12 d` under 2 months. Empty when unknown or not yet born."""
    if not birth_date:
        return ""
    on = on or timezone.localdate()
    if on < birth_date:
        return ""
    days = (on - birth_date).days
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month - (on.day < birth_date.day)
    if months < 2:
        return _("%(n)d d") % {"n": days}
    if months < 24:
        return _("%(n)d mo") % {"n": months}
    return _("%(n)d y") % {"n": months // 12}


def age_and_sex(birth_date, sex_code, on=None) -> str:
    """`42 y, female`: what a list shows beside the name."""
    return ", ".join(part for part in (age(birth_date, on), sex(sex_code)) if part)


def dicom_date(value: str | None) -> datetime.date | None:
    """A DICOM DA (`20261130`, or the old `2026.11.30`) as a date; None if it is not one."""
    text = (value or "").strip().replace(".", "").replace("-", "")
    try:
        return datetime.datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def dicom_time(value: str | None) -> str:
    """A DICOM TM (`081500.123`, `0815`) as `08:15`; empty if it is not one."""
    text = str(value or "").strip().replace(":", "")
    if len(text) < 4 or not text[:4].isdigit() or int(text[:2]) > 23 or int(text[2:4]) > 59:
        return ""
    return f"{text[:2]}:{text[2:4]}"


def date(value) -> str:
    """A date, a datetime (shown in the server's time zone) or a DICOM DA, as `2026-11-30`."""
    if value in (None, ""):
        return ""
    if not isinstance(value, datetime.date):  # a DICOM DA, as text or pydicom's value
        value = dicom_date(str(value))
        return value.strftime(DATE_FORMAT) if value else ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return value.strftime(DATE_FORMAT)


def date_time(value, seconds: bool = False) -> str:
    """A datetime in the server's time zone as `2026-11-30 08:15` (`08:15:09` with seconds, for
    the journal)."""
    if not value:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime(f"{DATE_FORMAT} {TIME_FORMAT}{':%S' if seconds else ''}")


def study_when(study_date, study_time: str = "") -> str:
    """A study's date and time (DA and TM) as `2026-11-30 08:15`."""
    return " ".join(part for part in (date(study_date), dicom_time(study_time)) if part)


ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration(seconds) -> str:
    """A length of time in words: `45 seconds`, `30 minutes`, `1 hour 5 minutes`, `2 days 3 hours`.
    Takes seconds, a timedelta or an ISO 8601 duration (`PT30M`, as django-axes gives its lockout
    time); the two largest units are shown."""
    if isinstance(seconds, datetime.timedelta):
        seconds = seconds.total_seconds()
    elif isinstance(seconds, str) and (parts := ISO_DURATION.match(seconds.strip())):
        days, hours, minutes, secs = (float(part or 0) for part in parts.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    seconds = int(round(float(seconds or 0)))
    if seconds < 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    units = (
        (86400, lambda n: ngettext("%(n)d day", "%(n)d days", n)),
        (3600, lambda n: ngettext("%(n)d hour", "%(n)d hours", n)),
        (60, lambda n: ngettext("%(n)d minute", "%(n)d minutes", n)),
    )
    words = []
    for size, word in units:
        count, seconds = divmod(seconds, size)
        if count or words:
            words.append(word(count) % {"n": count} if count else "")
    return " ".join(word for word in words[:2] if word)


def count(number: int, singular: str, plural: str) -> str:
    """`1 study`, `3 studies` (never `study(ies)`)."""
    return ngettext(f"%(n)s {singular}", f"%(n)s {plural}", number) % {"n": f"{number:,}"}


def data_size(number_of_bytes) -> str:
    """Bytes as people read them, in powers of 1000 as disks are sold: `950 bytes`, `1.2 MB`, `3.4 TB`."""
    value = float(number_of_bytes or 0)
    if value < 1000:
        return ngettext("%(n)d byte", "%(n)d bytes", int(value)) % {"n": int(value)}
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 1000 or unit == "PB":
            return f"{value:,.1f} {unit}"
    return ""


def period(first: datetime.date, last: datetime.date) -> str:
    """A range of days: `2026-11-30`, or `2026-11-01 to 2026-11-30`."""
    return date(first) if first == last else _("%(first)s to %(last)s") % {"first": date(first), "last": date(last)}
