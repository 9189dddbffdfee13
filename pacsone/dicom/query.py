"""DICOM query (C-FIND identifier) -> indexed database query -> response identifiers.

Patient Root and Study Root, levels PATIENT / STUDY / SERIES / IMAGE (PS3.4 C.6). Matching
(PS3.4 C.2.2.2): universal (empty or `*`), single value, wildcards `*` and `?`, list of UIDs,
date/time ranges `A-B`, `-B`, `A-`; when both a date and its time are ranges they are matched
as one combined date-time range (seed 004, "Range Matching by Date/Time"): StudyDate
20240101-20240102 with StudyTime 1800-0600 means from Jan 1 18:00 to Jan 2 06:00.

Keys on indexed columns become SQL conditions; a trailing-`*` pattern becomes a range on the
index (`>= 'DOE' AND < 'DOF'`, which every database answers from its index, where SQLite's LIKE
would not). Return keys come from the columns, from summary columns, or from the stored DICOM
JSON header of one instance of the entity (any attribute asked for). Rows are read in keyset
pages, so a broad query never loads the whole table.

Answers come two ways, the same identifiers: `Answerer.answers()` yields pydicom Datasets, and
`Answerer.encoded_answers(explicit_vr: bool)` yields each answer already encoded as bytes
(Implicit VR Little Endian when `explicit_vr` is False, Explicit VR Little Endian when True),
built from the rows and headers without a Dataset (identifier_codec.py; over ten times
cheaper). `find_encoded(identifier, model, retrieve_ae_title, explicit_vr)` is `find()` for
the encoded answers. An answer holding non-ASCII text, from a column or from the stored header,
carries the Specific Character Set its bytes are written in, in both ways (charsets.py: the
query's own set when it can hold the text, else ISO_IR 192).

Every entry point takes `studies`: the queryset of studies the caller may reach (a DICOM AE's
linked user or group, pacsone/dicom/policy.py), or None for the whole archive. Matches, counts,
headers and retrieved instances then stay inside it at every level: a patient appears only
with a study in it, and a study outside it answers as if it did not exist.
"""

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from .. import matching
from ..query_limits import QueryTimeout, time_limited
from ..models import Instance, Patient, Series, Study
from . import charsets, header_match
from .net import identifier_codec, status

log = logging.getLogger(__name__)

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
LEVELS = (PATIENT, STUDY, SERIES, IMAGE)
PATIENT_ROOT, STUDY_ROOT = "patient", "study"
MODEL_LEVELS = {PATIENT_ROOT: LEVELS, STUDY_ROOT: LEVELS[1:]}
PAGE_SIZE = 500

IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
UNABLE_TO_PROCESS = status.UNABLE_TO_PROCESS

# Kinds of matching.
TEXT, NAME, PERSON, UID, DATE, TIME, NUMBER = "text", "name", "person", "uid", "date", "time", "number"


@dataclass(frozen=True)
class Key:
    level: str
    column: str  # on the level's model
    kind: str


KEYS = {
    "PatientID": Key(PATIENT, "patient_id", TEXT),
    "PatientName": Key(PATIENT, "patient_name", NAME),
    "IssuerOfPatientID": Key(PATIENT, "issuer_of_patient_id", TEXT),
    "PatientBirthDate": Key(PATIENT, "birth_date", DATE),
    "PatientSex": Key(PATIENT, "sex", TEXT),
    "StudyInstanceUID": Key(STUDY, "study_instance_uid", UID),
    "StudyDate": Key(STUDY, "study_date", DATE),
    "StudyTime": Key(STUDY, "study_time", TIME),
    "AccessionNumber": Key(STUDY, "accession_number", TEXT),
    "StudyID": Key(STUDY, "study_id", TEXT),
    "StudyDescription": Key(STUDY, "study_description", TEXT),
    "ReferringPhysicianName": Key(STUDY, "referring_physician_name", PERSON),
    "NameOfPhysiciansReadingStudy": Key(STUDY, "reading_physician_name", PERSON),
    "SeriesInstanceUID": Key(SERIES, "series_instance_uid", UID),
    "Modality": Key(SERIES, "modality", TEXT),
    "SeriesNumber": Key(SERIES, "series_number", NUMBER),
    "SeriesDescription": Key(SERIES, "series_description", TEXT),
    "BodyPartExamined": Key(SERIES, "body_part_examined", TEXT),
    "SeriesDate": Key(SERIES, "series_date", DATE),
    "SeriesTime": Key(SERIES, "series_time", TIME),
    "SOPInstanceUID": Key(IMAGE, "sop_instance_uid", UID),
    "SOPClassUID": Key(IMAGE, "sop_class_uid", UID),
    "InstanceNumber": Key(IMAGE, "instance_number", NUMBER),
}
# The time key that forms a combined date-time range with a date key.
TIME_OF = {"StudyDate": "StudyTime", "SeriesDate": "SeriesTime"}

# Return keys computed from summary columns or counts: keyword -> (level, column or count).
COMPUTED = {
    "NumberOfPatientRelatedStudies": (PATIENT, "n_studies"),
    "NumberOfPatientRelatedSeries": (PATIENT, "n_series"),
    "NumberOfPatientRelatedInstances": (PATIENT, "n_instances"),
    "NumberOfStudyRelatedSeries": (STUDY, "number_of_series"),
    "NumberOfStudyRelatedInstances": (STUDY, "number_of_instances"),
    "ModalitiesInStudy": (STUDY, "modalities_in_study"),
    "NumberOfSeriesRelatedInstances": (SERIES, "number_of_instances"),
}
PATIENT_COUNTS = {
    "n_studies": "studies",
    "n_series": "studies__series",
    "n_instances": "studies__series__instances",
}


def patient_counts(names, studies: QuerySet | None) -> dict:
    """The patient-level count annotations, counting only the reachable studies when scoped."""
    only = None if studies is None else Q(studies__in=studies.values("pk"))
    return {name: Count(PATIENT_COUNTS[name], filter=only, distinct=True) for name in names}
NOT_RETURNED = {"QueryRetrieveLevel", "SpecificCharacterSet"}

MODEL_OF_LEVEL = {PATIENT: Patient, STUDY: Study, SERIES: Series, IMAGE: Instance}
# The ORM path from a level's model to a (higher or same) level's model.
PATH = {
    PATIENT: {PATIENT: ""},
    STUDY: {PATIENT: "patient__", STUDY: ""},
    SERIES: {PATIENT: "study__patient__", STUDY: "study__", SERIES: ""},
    IMAGE: {PATIENT: "series__study__patient__", STUDY: "series__study__", SERIES: "series__", IMAGE: ""},
}
# From Instance to the level's primary key: which instance's header answers other keys.
INSTANCE_TO = {PATIENT: "series__study__patient_id", STUDY: "series__study_id", SERIES: "series_id", IMAGE: "id"}


class QueryError(Exception):
    """A query we cannot run; `status` is the DICOM failure status to answer with."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- Matching -------------------------------------------------------------------------------------


def name_matching_is_case_insensitive() -> bool:
    return getattr(settings, "PACS_NAME_MATCHING", "insensitive") == "insensitive"


def prefix_q(field_name: str, prefix: str) -> Q:
    """`field` starts with `prefix`, as a range that any database answers from its index."""
    last = prefix[-1]
    if ord(last) >= 0x10FFFF:
        return Q(**{f"{field_name}__startswith": prefix})
    upper = prefix[:-1] + chr(ord(last) + 1)
    return Q(**{f"{field_name}__gte": prefix, f"{field_name}__lt": upper})


def text_q(field_name: str, pattern: str, case_insensitive: bool = False, folded: bool = False) -> Q:
    """Single value or wildcard matching; the literal prefix before any wildcard narrows the
    rows through the index before the full pattern is checked. `folded`: the column and the
    pattern are both upper-case, so the collation's case rules do not matter."""
    if pattern.strip("*") == "":
        return Q()
    try:
        pattern = matching.check_pattern(pattern)
    except matching.PatternError as error:
        raise QueryError(UNABLE_TO_PROCESS, str(error)) from None
    if case_insensitive:
        return matching.wildcard_q(field_name, pattern, case_insensitive=True)
    if not matching.has_wildcards(pattern):
        return Q(**{field_name: pattern}) & _same_case(field_name, pattern, folded)
    cut = min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)
    literal = pattern[:cut]
    narrowed = prefix_q(field_name, literal) if literal else Q()
    if pattern == literal + "*":
        return narrowed & _same_case(field_name, literal, folded)
    return narrowed & matching.wildcard_q(field_name, pattern)


def _same_case(field_name: str, literal: str, folded: bool) -> Q:
    """MySQL/MariaDB compare (=, >=, <) with the column's case-insensitive collation; Django's
    startswith there is LIKE BINARY, which restores DICOM's case-sensitive matching on the
    rows the index found. Other databases compare case-sensitively already."""
    if connection.vendor != "mysql" or not literal or folded:
        return Q()
    return Q(**{f"{field_name}__startswith": literal})


def _range_parts(value: str) -> tuple[str, str] | None:
    try:
        return matching.range_parts(value)
    except ValueError as error:
        raise QueryError(UNABLE_TO_PROCESS, str(error)) from None


def _date(text: str) -> datetime.date:
    try:
        return matching.dicom_date(text)
    except ValueError as error:
        raise QueryError(UNABLE_TO_PROCESS, str(error)) from None


def _time(text: str, upper: bool) -> str:
    """A DICOM time bound as a comparable string; an upper bound covers its whole last unit
    (1200 -> 120059.999999)."""
    text = text.replace(":", "")
    whole = text.split(".")[0]
    units = [whole[i:i + 2] for i in range(0, len(whole), 2)]
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or any(
            int(unit) > limit for unit, limit in zip(units, (23, 59, 60))):
        raise QueryError(UNABLE_TO_PROCESS, f"{text!r} is not a time (HHMMSS)")
    if not upper:
        return text
    filled = whole + "5959"[len(whole) - 2:] if len(whole) < 6 else whole
    return filled + (text[len(whole):] if "." in text else ".999999")


def _bounded_q(field_name: str, value: str, bound) -> Q:
    """A value or a range `A-B`, `-B`, `A-`, whose ends `bound(text, upper)` turns into
    comparable values. A single value is the range from itself to itself, so that it matches
    at its precision (time 1015 matches 101500 to 101559.999999)."""
    start, end = _range_parts(value) or (value, value)
    if not start and not end:
        raise QueryError(UNABLE_TO_PROCESS, "a range needs at least one end")
    condition = Q()
    if start:
        condition &= Q(**{f"{field_name}__gte": bound(start, False)})
    if end:
        condition &= Q(**{f"{field_name}__lte": bound(end, True)})
    return condition


def date_q(field_name: str, value: str) -> Q:
    return _bounded_q(field_name, value, lambda text, _upper: _date(text))


def time_q(field_name: str, value: str) -> Q:
    return _bounded_q(field_name, value, _time)


def combined_q(date_field: str, time_field: str, date_value: str, time_value: str) -> Q:
    """A date range and a time range as one date-time range (PS3.4 C.2.2.2.5.1)."""
    date_start, date_end = _range_parts(date_value)
    time_start, time_end = _range_parts(time_value)
    condition = Q()
    if date_start:
        condition &= _within(date_field, time_field, date_start, time_start, upper=False)
    if date_end:
        condition &= _within(date_field, time_field, date_end, time_end, upper=True)
    return condition


def _within(date_field: str, time_field: str, day_text: str, time_text: str, upper: bool) -> Q:
    """On the inner side of one end of a combined range: a later (for the upper end: earlier)
    day, or that very day from (until) the end's time."""
    day = _date(day_text)
    other_days = Q(**{f"{date_field}__{'lt' if upper else 'gt'}": day})
    that_day = Q(**{date_field: day})
    if time_text:
        that_day &= Q(**{f"{time_field}__{'lte' if upper else 'gte'}": _time(time_text, upper)})
    return other_days | that_day


def _value_text(element: DataElement) -> str:
    value = element.value
    if value is None:
        return ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def key_q(keyword: str, path: str, value: str) -> Q:
    """The condition for one matching key at ORM path `path` (e.g. 'study__')."""
    key = KEYS[keyword]
    column = path + key.column
    if key.kind in VALUE_LIST_KINDS and "\\" in value:
        return value_list_q(value, lambda one: key_q(keyword, path, one))
    if key.kind == UID:
        uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
        return Q(**{column: uids[0]}) if len(uids) == 1 else Q(**{f"{column}__in": uids})
    if key.kind == DATE:
        return date_q(column, value)
    if key.kind == TIME:
        return time_q(column, value)
    if key.kind == NUMBER:
        try:
            return Q(**{column: int(value)})
        except ValueError:
            raise QueryError(UNABLE_TO_PROCESS, f"{keyword} must be a number, not {value!r}") from None
    if key.kind in (NAME, PERSON):
        return person_q(key, column, path, value)
    if keyword == "PatientID" and not matching.has_wildcards(value):  # an ID merged away (ADT^A40)
        from hl7.patients import merged_away_q  # finds the patient it was merged into

        return text_q(column, value) | merged_away_q(path, value)
    return text_q(column, value)


# Kinds whose values may be a list `A\B`: any value matches (PS3.4 C.2.2.2.1, as dcmtk and
# Orthanc read it). UIDs have their own list matching; dates, times and numbers take one value.
VALUE_LIST_KINDS = (TEXT, NAME, PERSON)


def value_list_q(value: str, one_q) -> Q:
    """Any of the backslash-separated values, each matched by `one_q(value)` (which may hold
    wildcards); a universal value (empty or `*`) among them makes the whole key universal."""
    values = [part.strip() for part in value.split("\\")]
    if any(not part.strip("*") for part in values):
        return Q()
    condition = Q()
    for part in values:
        condition |= one_q(part)
    return condition


def modalities_q(value: str) -> Q:
    """ModalitiesInStudy at STUDY level: a study matches when one of its series has one of the
    listed modalities (wildcards allowed)."""
    within = value_list_q(value, lambda one: text_q("modality", one))
    if not within:
        return Q()
    return Q(Exists(Series.objects.filter(within, study=OuterRef("pk"))))


def person_q(key: Key, column: str, path: str, value: str) -> Q:
    """A person name key, matched on the whole value or one of its component groups
    (matching.person_name_q); case-insensitive unless PACS_NAME_MATCHING says otherwise."""
    insensitive = name_matching_is_case_insensitive()
    if key.kind == NAME and insensitive:  # the upper-case search column, from its index
        return matching.person_name_q(path + "patient_name_search", value.upper(),
                                      lambda field, pattern: text_q(field, pattern, folded=True))
    return matching.person_name_q(column, value, lambda field, pattern: text_q(field, pattern, insensitive))


# --- The query -----------------------------------------------------------------------------------------


@dataclass
class Query:
    level: str
    model: str
    identifier: Dataset
    condition: Q = field(default_factory=Q)
    matched_keys: list[str] = field(default_factory=list)
    studies: QuerySet | None = None  # the studies the caller may reach; None: all
    # Keys matched on the stored headers (header_match.py): their journal text, and for each
    # matched entity the instance whose header matched (it answers the header return keys).
    header_keys: list[str] = field(default_factory=list)
    header_instances: dict[int, int] = field(default_factory=dict)

    def queryset(self):
        manager = MODEL_OF_LEVEL[self.level].objects
        return manager.filter(self.condition)

    def count(self) -> int:
        return self.queryset().count()

    def describe(self) -> str:
        """For the journal: the keys that were matched on, with their values."""
        parts = [f"{kw}={_value_text(self.identifier[kw])}" for kw in self.matched_keys] + self.header_keys
        return f"{self.model} root, {self.level}: " + (", ".join(parts) or "all")


def parse_level(identifier: Dataset, model: str) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if level not in MODEL_LEVELS[model]:
        allowed = "/".join(MODEL_LEVELS[model])
        raise QueryError(IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                         f"QueryRetrieveLevel must be one of {allowed}, not {level!r}")
    return level


def scope_q(level: str, studies: QuerySet) -> Q:
    """The entities of `level` that belong to the reachable studies."""
    if level == PATIENT:
        return Q(Exists(studies.filter(patient=OuterRef("pk"))))
    return Q(**{f"{PATH[level][STUDY]}pk__in": studies.values("pk")})


def build_query(identifier: Dataset, model: str, studies: QuerySet | None = None) -> Query:
    """Translate a C-FIND (or C-MOVE/C-GET) identifier, within `studies` when given (the studies
    the caller may reach). Indexed keys below the level are ignored; keys no column holds are
    matched on the stored headers (match_headers)."""
    level = parse_level(identifier, model)
    query = Query(level, model, identifier, studies=studies)
    if studies is not None:
        query.condition &= scope_q(level, studies)
    depth = LEVELS.index(level)
    values: dict[str, str] = {}
    for element in identifier:
        keyword = element.keyword
        key = KEYS.get(keyword)
        if key is None or LEVELS.index(key.level) > depth:
            continue
        try:
            text = _value_text(element)
        except Exception:
            raise QueryError(UNABLE_TO_PROCESS, f"cannot read the value of {keyword}") from None
        if text and text.strip("*"):
            values[keyword] = text
    for keyword, text in values.items():
        key = KEYS[keyword]
        path = PATH[level][key.level]
        time_keyword = TIME_OF.get(keyword)
        if keyword in TIME_OF.values() and _combined(values, keyword):
            continue  # matched together with its date
        if time_keyword and _combined(values, time_keyword):
            query.condition &= combined_q(path + key.column, path + KEYS[time_keyword].column,
                                          text, values[time_keyword])
        else:
            query.condition &= key_q(keyword, path, text)
        query.matched_keys.append(keyword)
    if "ModalitiesInStudy" in identifier and level == STUDY:
        modalities = modalities_q(_value_text(identifier["ModalitiesInStudy"]))
        if modalities:
            query.condition &= modalities
            query.matched_keys.append("ModalitiesInStudy")
    match_headers(query)
    return query


def match_headers(query: Query) -> None:
    """Narrow the query by the keys that no column holds, from the stored headers of the
    instances the indexed keys left (header_match.py has the rules and the bound)."""
    try:
        keys = header_match.header_keys(query.identifier, indexed=set(KEYS) | set(COMPUTED))
        if not keys:
            return
        if query.level == IMAGE:
            instances, owner = Instance.objects.filter(query.condition), "pk"
        else:
            candidates = MODEL_OF_LEVEL[query.level].objects.filter(query.condition).values("pk")
            owner = INSTANCE_TO[query.level]
            instances = Instance.objects.filter(**{f"{owner}__in": candidates})
            if query.studies is not None:  # a patient matches only by what the caller may reach
                instances = instances.filter(series__study__in=query.studies.values("pk"))
        matched = header_match.scan(instances, owner, keys)
        query.header_keys = [header_match.describe(key) for key in keys]
    except header_match.HeaderKeyError as error:
        raise QueryError(error.status, error.reason) from None
    query.condition &= Q(pk__in=sorted(matched))
    query.header_instances = matched


def _combined(values: dict[str, str], time_keyword: str) -> bool:
    date_keyword = next(d for d, t in TIME_OF.items() if t == time_keyword)
    return (date_keyword in values and time_keyword in values
            and _range_parts(values[date_keyword]) is not None
            and _range_parts(values[time_keyword]) is not None)


# --- Answers ----------------------------------------------------------------------------------------------


def _format(kind: str, value) -> str | int | None:
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    return value


class Answerer:
    """Builds the response identifiers of a query, page by page."""

    def __init__(self, query: Query, retrieve_ae_title: str = ""):
        self.query = query
        self.retrieve_ae_title = retrieve_ae_title
        level = query.level
        depth = LEVELS.index(level)
        self.columns: dict[str, str] = {}  # keyword -> values() path
        self.computed: dict[str, str] = {}
        self.from_header: list[DataElement] = []
        self._plan = None
        self.asked_charset = charsets.query_charset(query.identifier)
        for element in query.identifier:
            keyword = element.keyword
            if keyword in NOT_RETURNED or element.tag.is_private or element.tag.group == 0x0002:
                continue
            key = KEYS.get(keyword)
            if key is not None and LEVELS.index(key.level) <= depth:
                self.columns[keyword] = PATH[level][key.level] + key.column
            elif keyword in COMPUTED and COMPUTED[keyword][0] == level:
                self.computed[keyword] = COMPUTED[keyword][1]
            elif keyword not in ("RetrieveAETitle", "InstanceAvailability", "QueryRetrieveLevel"):
                self.from_header.append(element)
        self.from_header_tags = [f"{int(element.tag):08X}" for element in self.from_header]

    def rows(self):
        """(row, header) pairs in primary-key order, read PAGE_SIZE at a time."""
        queryset = self.query.queryset()
        if self.query.level == PATIENT and self.computed:
            queryset = queryset.annotate(**patient_counts(self.computed.values(), self.query.studies))
        fields = ["pk", *self.columns.values(), *self.computed.values()]
        last_pk = 0
        while True:
            page = list(queryset.filter(pk__gt=last_pk).order_by("pk").values(*fields)[:PAGE_SIZE])
            if not page:
                return
            headers = self._headers([row["pk"] for row in page]) if self.from_header else {}
            for row in page:
                yield row, headers.get(row["pk"], {})
            last_pk = page[-1]["pk"]

    def _headers(self, pks: list[int]) -> dict[int, dict]:
        """The header of one instance (the first stored) of each entity, in two queries."""
        owner = INSTANCE_TO[self.query.level]
        matched = self.query.header_instances  # the instance whose header matched, if any
        rest = [pk for pk in pks if pk not in matched]
        firsts = []
        if rest:
            instances = Instance.objects.filter(**{f"{owner}__in": rest})
            if self.query.studies is not None:  # a patient's header from a study the caller may reach
                instances = instances.filter(series__study__in=self.query.studies.values("pk"))
            firsts = instances.values(owner).annotate(first=Min("id")).values_list(owner, "first")
        first_of = {**dict(firsts), **{pk: matched[pk] for pk in pks if pk in matched}}
        headers = dict(Instance.objects.filter(pk__in=first_of.values()).values_list("pk", "header"))
        return {pk: headers.get(instance_pk, {}) for pk, instance_pk in first_of.items()}

    def answer(self, row: dict, header: dict) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = self.query.level
        for element in self.query.identifier:
            if element.keyword in NOT_RETURNED:
                continue
            keyword = element.keyword
            if keyword in self.columns:
                value = _format(KEYS[keyword].kind, row[self.columns[keyword]])
                ds.add_new(element.tag, element.VR, "" if value is None else value)
            elif keyword in self.computed:
                value = row[self.computed[keyword]]
                if keyword == "ModalitiesInStudy":
                    value = [m for m in value.split("\\") if m]
                ds.add_new(element.tag, element.VR, value)
            elif keyword == "RetrieveAETitle":
                ds.RetrieveAETitle = self.retrieve_ae_title
            elif keyword == "InstanceAvailability":
                ds.InstanceAvailability = "ONLINE"
        for element in self.from_header:
            ds[element.tag] = _header_element(header, element)
        charset = self.charset_of(row, header)
        if charset is not None:
            ds.SpecificCharacterSet = charset
        return ds

    def charset_of(self, row: dict, header: dict) -> str | list[str] | None:
        """The (0008,0005) of the answer built from `row` and `header` (charsets.answer_charset)."""
        texts = [v for v in row.values() if type(v) is str and not v.isascii()]
        for key in self.from_header_tags:
            stored = header.get(key)
            if stored is not None:
                charsets.non_ascii_json_texts(stored, texts)
        return charsets.answer_charset(self.asked_charset, texts)

    def answers(self):
        for row, header in self.rows():
            yield self.answer(row, header)

    # --- The same answers encoded, without a Dataset (the C-FIND SCP's path) -----------------------

    def encoded_answers(self, explicit_vr: bool):
        """Each answer of `answers()`, encoded as `write_dataset` would encode it: Implicit VR
        Little Endian (explicit_vr=False) or Explicit VR Little Endian (True)."""
        for row, header in self.rows():
            yield self.encoded_answer(row, header, explicit_vr)

    def encoded_answer(self, row: dict, header: dict, explicit_vr: bool) -> bytes:
        """`answer(row, header)` encoded; through pydicom only where the fast path cannot be exact."""
        plan, charset_at = self._encoding_plan()
        charset = self.charset_of(row, header)
        elements = []
        for tag, vr, kind, source in plan:
            if kind is _CONSTANT:
                elements.append(source)
            elif kind is _COLUMN:
                value = row[source]
                if value is None:
                    value = ""
                elif type(value) is datetime.date:
                    value = _dicom_date(value)
                elements.append((tag, vr, value))
            elif kind is _MODALITIES:
                elements.append((tag, vr, [m for m in row[source].split("\\") if m]))
            elif kind is _COUNT:
                elements.append((tag, vr, row[source]))
            else:
                elements.append(_header_triple(header, source, explicit_vr, charset))
        if charset is not None:
            elements.insert(charset_at, (identifier_codec.CHARSET_TAG, "CS", charset))
        try:
            return identifier_codec.encode(elements, explicit_vr)
        except identifier_codec.NotFast:  # an ambiguous VR: write_dataset resolves it from the others
            return identifier_codec.pydicom_encode(self.answer(row, header), explicit_vr)

    def _encoding_plan(self) -> tuple[list, int]:
        """What `answer()` puts in each answer, in tag order: (tag, VR, kind, source) with the
        kinds below; and where a Specific Character Set goes among them."""
        if self._plan is not None:
            return self._plan
        plan = [(0x00080052, "CS", _CONSTANT, (0x00080052, "CS", self.query.level))]
        for element in self.query.identifier:
            keyword = element.keyword
            if keyword in NOT_RETURNED:
                continue
            tag = int(element.tag)
            if keyword in self.columns:
                plan.append((tag, element.VR, _COLUMN, self.columns[keyword]))
            elif keyword in self.computed:
                kind = _MODALITIES if keyword == "ModalitiesInStudy" else _COUNT
                plan.append((tag, element.VR, kind, self.computed[keyword]))
            elif keyword == "RetrieveAETitle":
                plan.append((tag, "AE", _CONSTANT, (tag, "AE", self.retrieve_ae_title)))
            elif keyword == "InstanceAvailability":
                plan.append((tag, "CS", _CONSTANT, (tag, "CS", "ONLINE")))
        for element in self.from_header:
            plan.append((int(element.tag), element.VR, _HEADER, element))
        plan.sort(key=lambda entry: entry[0])
        charset_at = next((i for i, entry in enumerate(plan) if entry[0] > identifier_codec.CHARSET_TAG), len(plan))
        self._plan = plan, charset_at
        return self._plan


def _dicom_date(day: datetime.date) -> str:
    """`_format`'s strftime("%Y%m%d"), several times faster."""
    return day.isoformat().replace("-", "") if day.year >= 1000 else day.strftime("%Y%m%d")


def _no_bulk_data(*_args) -> bytes:
    return b""


# Kinds of elements in an answer's encoding plan (Answerer._encoding_plan).
_CONSTANT, _COLUMN, _MODALITIES, _COUNT, _HEADER = "constant", "column", "modalities", "count", "header"
# Stored DICOM JSON whose values the codec writes as they are (strings, or numbers for these).
_JSON_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UR", "UI", "SH", "LO", "ST", "LT", "UT", "UC"})
_JSON_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "SV", "UV"})
_JSON_NUMBER_VRS = _JSON_INTEGER_VRS | {"FL", "FD"}


def _header_triple(header: dict, asked: DataElement, explicit_vr: bool, charset: str | None) -> tuple:
    """What `_header_element` gives, as a (tag, VR, value) for identifier_codec.encode(); an
    element already encoded by pydicom (VR None) where the stored JSON is not plain."""
    tag = int(asked.tag)
    stored = header.get(f"{tag:08X}")
    if stored is None:
        return tag, asked.VR, None
    if type(stored) is dict and len(stored) <= 2:
        vr = stored.get("vr")
        values = stored.get("Value")
        if len(stored) == (1 if values is None else 2) and vr is not None:
            if values is None or values == []:
                if vr in _JSON_TEXT_VRS or vr in _JSON_NUMBER_VRS or vr in ("PN", "IS", "DS", "SQ"):
                    return tag, vr, None
            elif type(values) is list:
                if vr in _JSON_TEXT_VRS:
                    if all(type(v) is str for v in values):
                        return tag, vr, values
                elif vr == "PN":
                    names = [v.get("Alphabetic") for v in values if type(v) is dict and len(v) == 1]
                    if len(names) == len(values) and all(type(n) is str for n in names):
                        return tag, vr, names
                elif vr == "IS" or vr in _JSON_INTEGER_VRS:
                    if all(type(v) is int for v in values):
                        return tag, vr, values
                elif vr == "FL" or vr == "FD":
                    if all(type(v) is int or type(v) is float for v in values):
                        return tag, vr, values
    return tag, None, identifier_codec.pydicom_element(_header_element(header, asked), explicit_vr, charset)


def _header_element(header: dict, asked: DataElement) -> DataElement:
    """The asked attribute from a DICOM JSON header, or an empty one with the asked VR."""
    tag_key = f"{Tag(asked.tag):08X}"
    stored = header.get(tag_key)
    if stored is not None:
        try:
            return Dataset.from_json({tag_key: stored}, bulk_data_uri_handler=_no_bulk_data)[asked.tag]
        except Exception:
            log.warning("unreadable stored attribute %s", tag_key)
    return DataElement(asked.tag, asked.VR, [] if asked.VR == "SQ" else None)


def time_limited_answers(answers):
    """The answers, each database statement behind them bounded in time (query_limits); a
    statement stopped there becomes QueryError (Unable to process, with the reason)."""
    try:
        with time_limited():
            yield from answers
    except QueryTimeout as timeout:
        raise QueryError(UNABLE_TO_PROCESS, str(timeout)) from None


def find(identifier: Dataset, model: str, retrieve_ae_title: str = "", studies: QuerySet | None = None):
    """(Query, iterator of answers). Raises QueryError for an identifier we cannot run (also
    while iterating, when the search runs past its time bound)."""
    query = build_query(identifier, model, studies)
    return query, time_limited_answers(Answerer(query, retrieve_ae_title).answers())


def find_encoded(identifier: Dataset, model: str, retrieve_ae_title: str = "", explicit_vr: bool = False,
                 studies: QuerySet | None = None):
    """(Query, iterator of answers encoded as bytes, see Answerer.encoded_answers). Raises
    QueryError for an identifier we cannot run (also while iterating, see find)."""
    query = build_query(identifier, model, studies)
    return query, time_limited_answers(Answerer(query, retrieve_ae_title).encoded_answers(explicit_vr))


def instances_for(identifier: Dataset, model: str, studies: QuerySet | None = None):
    """(Query, queryset of the instances to send) for C-MOVE and C-GET, only of `studies` when
    given (a patient's instances in the studies the caller may reach)."""
    query = build_query(identifier, model, studies)
    matched = query.queryset().values("pk")
    owner = INSTANCE_TO[query.level]
    owner_field = owner if query.level != IMAGE else "pk"
    instances = Instance.objects.filter(**{f"{owner_field}__in": matched}).select_related("storage_location")
    if studies is not None:
        instances = instances.filter(series__study__in=studies.values("pk"))
    return query, instances.order_by("series__study_id", "series_id", "instance_number", "pk")
