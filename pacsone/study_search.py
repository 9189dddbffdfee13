"""The study search: one set of filters for the study list page and the REST API.

Parameters (all optional): patient_id, patient_name (wildcards * and ?, case-insensitive),
accession_number, study_date (DICOM date or range `A-B`, `-B`, `A-`), date_from / date_to,
modality (one or several: `CT\\MR`, `CT,MR` or the parameter repeated; any of them),
referring_physician (wildcards), source_ae, institution, read (true/false),
public (true/false), study_instance_uid.

Wildcard patterns are bounded (matching.check_pattern): one over the bounds is a problem of its
parameter, never a slow query. Callers run the search inside query_limits.time_limited().
"""

from django.db.models import Exists, OuterRef, QuerySet

from .matching import PatternError, date_range_q, parse_date, person_name_q, wildcard_q
from .models import Series

SEARCH_FIELDS = (
    "patient_id", "patient_name", "accession_number", "study_date", "date_from", "date_to",
    "modality", "referring_physician", "source_ae", "institution", "read", "public",
    "study_instance_uid",
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


def search_studies(studies: QuerySet, params) -> tuple[QuerySet, dict[str, str]]:
    """Filter an already visibility-restricted study queryset. Returns it and the problems
    (parameter -> message) so that bad input is reported, never silently widened."""
    problems: dict[str, str] = {}
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
        except ValueError as error:
            problems["study_date"] = str(error)
    for name, lookup in (("date_from", "study_date__gte"), ("date_to", "study_date__lte")):
        if value := _text(params, name):
            day = parse_date(value)
            if day is None:
                problems[name] = f"{value!r} is not a date (YYYY-MM-DD)"
            else:
                studies = studies.filter(**{lookup: day})
    if modalities := _modalities(params):
        in_series = Series.objects.filter(study=OuterRef("pk"), modality__in=modalities)
        studies = studies.filter(Exists(in_series))
    for name in ("read", "public"):
        flag = _flag(params, name, problems)
        if flag is not None:
            studies = studies.filter(**{name: flag})
    return studies, problems
