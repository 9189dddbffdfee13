"""The study search: one set of filters for the study list page and the REST API.

Parameters (all optional): patient_id, patient_name (wildcards * and ?, case-insensitive),
accession_number, study_date (DICOM date or range `A-B`, `-B`, `A-`), date_from / date_to,
modality (one or several: `CT\\MR`, `CT,MR` or the parameter repeated; any of them),
referring_physician (wildcards), source_ae, institution, read (true/false),
public (true/false), study_instance_uid;
q, the one search box: every word a prefix of a word of the patient's name (in any order,
accents and case ignored: `doe`, `John Doe`, `DOE, JOHN`, `muller` all find MÜLLER^JOHN...),
or the whole text the start of the Patient ID or the Accession Number;
period: today, yesterday, 7d or 30d (study dates, in the server's time zone).

Wildcard patterns are bounded (matching.check_pattern): one over the bounds is a problem of its
parameter, never a slow query. Callers run the search inside query_limits.time_limited().
"""

import datetime
import re
import unicodedata
from functools import lru_cache

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .matching import PatternError, date_range_q, dicom_date, parse_date, person_name_q, wildcard_q
from .models import Series

SEARCH_FIELDS = (
    "patient_id", "patient_name", "accession_number", "study_date", "date_from", "date_to",
    "modality", "referring_physician", "source_ae", "institution", "read", "public",
    "study_instance_uid", "q", "period",
)
# Parameters matched with wildcards: (parameter, column, case-insensitive).
WILDCARD_FIELDS = (
    ("patient_id", "patient__patient_id", False),
    ("patient_name", "patient__patient_name_search", False),  # the folded (upper-case) name
    ("accession_number", "accession_number", False),
    ("referring_physician", "referring_physician_name", True),
    ("institution", "institution_name", True),
)
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


# Person names are found by any of their component groups (matching.person_name_q).
PERSON_NAME_PARAMETERS = {"patient_name", "referring_physician"}


def _wildcard_condition(name: str, field: str, value: str, case_insensitive: bool):
    def match(column: str, pattern: str):
        return wildcard_q(column, pattern, case_insensitive=case_insensitive)

    if name in PERSON_NAME_PARAMETERS:
        return person_name_q(field, value, match)
    return match(field, value)


def _text(params, name: str) -> str:
    return (params.get(name) or "").strip()


def _flag(params, name: str, problems: dict) -> bool | None:
    raw = _text(params, name).lower()
    if raw in ("", "any"):
        return None
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    problems[name] = f"{name} must be true or false, not {raw!r}"
    return None


def _reversed_range(value: str) -> bool:
    """A DICOM range `A-B` whose end comes before its start (C-FIND finds nothing for it; a
    person typing it made a mistake and is told so)."""
    if parse_date(value) is not None:
        return False  # one ISO date, its dashes are not a range
    start, _, end = value.partition("-")
    return bool(start.strip() and end.strip()) and dicom_date(start.strip()) > dicom_date(end.strip())


def _modalities(params) -> list[str]:
    """`modality` as one value, a list `CT\\MR` or `CT,MR`, or repeated (a multi-select):
    a study matches when one of its series has any of them."""
    raw = params.getlist("modality") if hasattr(params, "getlist") else [params.get("modality") or ""]
    if isinstance(raw, str):
        raw = [raw]
    found = []
    for item in raw:
        for value in str(item or "").replace("\\", ",").split(","):
            if value.strip() and value.strip().upper() not in found:
                found.append(value.strip().upper())
    return found


# The search box: at most this many words, each at most this long (a bounded query).
MAX_WORDS = 6
MAX_WORD_LENGTH = 64
# Patients the search box's name match is handed on as a list of ids (beyond: a subquery).
MAX_LISTED_PATIENTS = 5000
# Where a word of a person name starts: the value's start, a component (^), a group (=), a space.
WORD_START = r"(^|[\^= ,.'-])"
PERIODS = {"today": (0, 0), "yesterday": (1, 1), "7d": (6, 0), "30d": (29, 0)}
# Letters written without a decomposition that people type as their plain form.
UNDECOMPOSED = {"O": "ØŒ", "L": "Ł", "D": "ĐÐ", "A": "Æ", "T": "Þ", "S": "ß", "I": "ı"}


def fold(text: str) -> str:
    """Upper case without accents: `Müller` -> `MULLER`."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


@lru_cache(maxsize=1)
def _accented_forms() -> dict[str, str]:
    """Each plain Latin letter -> itself and its accented forms (both cases), for the patterns."""
    forms: dict[str, set[str]] = {}
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = fold(char)
        if len(base) == 1 and "A" <= base <= "Z":
            forms.setdefault(base, set()).update({char, char.upper(), char.lower()})
    for base, extra in UNDECOMPOSED.items():
        forms.setdefault(base, set()).update(extra + extra.lower())
    return {base: "".join(sorted(chars - {base, base.lower()})) for base, chars in forms.items()}


def _letter_pattern(char: str) -> str:
    base = fold(char)
    if len(base) == 1 and "A" <= base <= "Z" and _accented_forms().get(base):
        return f"[{base}{re.escape(_accented_forms()[base])}]"
    return re.escape(char)


def name_word_q(field: str, word: str) -> Q:
    """A word of a person name starts with `word`, accents and case ignored (a regular
    expression: the databases' case-insensitive ones fold every letter)."""
    pattern = WORD_START + "".join(_letter_pattern(char) for char in fold(word))
    return Q(**{f"{field}__iregex": pattern})


def search_words(text: str) -> list[str]:
    """The words of the search box: `DOE, John` and `doe^john` -> DOE, JOHN."""
    return [word for word in re.split(r"[\s,^=]+", text) if word]


def _prefix_q(field: str, text: str) -> Q:
    """`field` starts with `text` as typed or in upper case, as index range lookups (a LIKE
    would scan on SQLite, whose LIKE ignores the index unless the column ignores case)."""
    condition = Q(pk__in=[])
    for spelled in dict.fromkeys((text, text.upper())):
        condition |= Q(**{f"{field}__gte": spelled, f"{field}__lt": spelled + "\U0010ffff"})
    return condition


def search_box_q(text: str, problems: dict) -> Q | None:
    """The search box: the name by all its words, or the Patient ID or Accession by the text.
    The name is matched on the patient table (one regular expression per patient, a subquery
    the database runs once), the numbers by index ranges."""
    from .models import Patient

    words = search_words(text)
    if len(words) > MAX_WORDS or any(len(word) > MAX_WORD_LENGTH for word in words):
        problems["q"] = (f"Search with at most {MAX_WORDS} words of at most {MAX_WORD_LENGTH} characters.")
        return None
    if not words:
        return Q()
    by_name = Q()
    for word in words:
        by_name &= name_word_q("patient_name_search", word)
    whole = text.strip()
    patients = Patient.objects.filter(by_name | _prefix_q("patient_id", whole)).values_list("pk", flat=True)
    # Read once (one pass of the expression over the patients) and used as a list by both the
    # count and the page; a very common name stays a subquery.
    found = list(patients[:MAX_LISTED_PATIENTS + 1])
    if len(found) > MAX_LISTED_PATIENTS:
        found = patients
    return Q(patient__in=found) | _prefix_q("accession_number", whole)


def period_range(name: str, today: datetime.date | None = None) -> tuple[datetime.date, datetime.date] | None:
    """(first day, last day) of a period of the quick filters."""
    if name not in PERIODS:
        return None
    today = today or timezone.localdate()
    back_first, back_last = PERIODS[name]
    return today - datetime.timedelta(days=back_first), today - datetime.timedelta(days=back_last)


def search_studies(studies: QuerySet, params) -> tuple[QuerySet, dict[str, str]]:
    """Filter an already visibility-restricted study queryset. Returns it and the problems
    (parameter -> message) so that bad input is reported, never silently widened."""
    problems: dict[str, str] = {}
    # Callers run this inside query_limits.time_limited(): the search box reads the patients here.
    if value := _text(params, "q"):
        condition = search_box_q(value, problems)
        studies = studies.none() if condition is None else studies.filter(condition)
    if value := _text(params, "period"):
        days = period_range(value)
        if days is None:
            problems["period"] = f"period must be one of {', '.join(PERIODS)}, not {value!r}"
        else:
            studies = studies.filter(study_date__range=days)
    for name, field, case_insensitive in WILDCARD_FIELDS:
        if value := _text(params, name):
            if name == "patient_name":
                value = value.upper()
            try:
                studies = studies.filter(_wildcard_condition(name, field, value, case_insensitive))
            except PatternError as error:
                problems[name] = f"{name}: {error}"
                studies = studies.none()  # refused, not widened to every study
    if value := _text(params, "study_instance_uid"):
        studies = studies.filter(study_instance_uid=value)
    if value := _text(params, "source_ae"):
        studies = studies.filter(source_ae=value)
    if value := _text(params, "study_date"):
        try:
            studies = studies.filter(date_range_q("study_date", value))
            if _reversed_range(value):
                problems["study_date"] = "The end date is before the start date."
        except ValueError as error:
            problems["study_date"] = str(error)
    days = {}
    for name, lookup in (("date_from", "study_date__gte"), ("date_to", "study_date__lte")):
        if value := _text(params, name):
            day = parse_date(value)
            if day is None:
                problems[name] = f"{value!r} is not a date (YYYY-MM-DD)"
            else:
                days[name] = day
                studies = studies.filter(**{lookup: day})
    if len(days) == 2 and days["date_from"] > days["date_to"]:
        problems["date_to"] = "The end date is before the start date."
    if modalities := _modalities(params):
        in_series = Series.objects.filter(study=OuterRef("pk"), modality__in=modalities)
        studies = studies.filter(Exists(in_series))
    for name in ("read", "public"):
        flag = _flag(params, name, problems)
        if flag is not None:
            studies = studies.filter(**{name: flag})
    return studies, problems
