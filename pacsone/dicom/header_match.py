"""C-FIND matching on attributes that have no index column, from the stored headers.

Each instance keeps its header as DICOM JSON (`Instance.header`), so any attribute can be a
matching key, sequences included (PS3.4 C.2.2.2.6). The rules:

- The indexed keys narrow the query first (query.py); only the headers of the instances of the
  entities they leave are read, never a file.
- At PATIENT, STUDY and SERIES level an entity matches when **any one** of its instances has a
  header that matches every such key (attributes such as ProtocolName or a code sequence
  differ between the series and images of one study). Its answer's other header values then
  come from that instance. At IMAGE level the instance itself is matched.
- A key with a value needs the attribute present and non-empty in the header; a list `A\\B`
  means any of them; `*` and `?` are wildcards for text; DA, TM and DT take ranges; UIDs lists;
  numbers compare as numbers; person names follow PACS_NAME_MATCHING.
- A sequence key with one item matches when one item of the stored sequence matches all the
  item's keys (recursively); an empty sequence key, or one whose item holds only empty keys,
  is a return key (universal matching).
- The work is bounded: the headers are read in batches of BATCH instances, only the elements
  the keys name (extracted by the database), and a query that would read more than
  PACS_QUERY_HEADER_SCAN_LIMIT headers is refused with 0xA700 (out of resources) and an Error
  Comment saying so, before any is read: add indexed keys (date, patient, modality...).
"""

import functools
import json
import re

from django.conf import settings
from django.db.models import F, Func, JSONField
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..models import Instance
from .net import status

BATCH = 500
# Attributes of the query itself, not of the stored instances: never matched from headers.
QUERY_ONLY = frozenset({
    "QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "InstanceAvailability", "ModalitiesInStudy",
    "SOPClassesInStudy", "RetrieveURL", "RetrieveURI", "StorageMediaFileSetID", "StorageMediaFileSetUID",
    "QueryRetrieveView", "TimezoneOffsetFromUTC", "RetrieveLocationUID",
})
TEXT_VRS = frozenset({"AE", "AS", "CS", "SH", "LO", "ST", "LT", "UT", "UC", "UR", "PN"})
NUMBER_VRS = frozenset({"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"})
DATE_TIME_VRS = frozenset({"DA", "TM", "DT"})


class HeaderKeyError(Exception):
    """A header key we cannot match on; `status` is the DICOM failure status."""

    def __init__(self, status_code: int, reason: str):
        super().__init__(reason)
        self.status = status_code
        self.reason = reason


class HeaderElement(Func):
    """One top-level element of `Instance.header`, extracted by the database (NULL if absent)."""

    output_field = JSONField()

    def __init__(self, tag_key: str):
        if not re.fullmatch(r"[0-9A-F]{8}", tag_key):
            raise ValueError(f"not a tag: {tag_key!r}")
        super().__init__(F("header"))
        self.tag_key = tag_key

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"({column} -> (%s)::text)", [*params, self.tag_key]
        return f"JSON_EXTRACT({column}, %s)", [*params, f'$."{self.tag_key}"']


# --- Which elements of an identifier are header keys ------------------------------------------------


def value_text(element: DataElement) -> str:
    try:
        value = element.value
    except Exception:  # a raw value its VR cannot hold (IS "one")
        raise HeaderKeyError(status.UNABLE_TO_PROCESS, f"cannot read the value of {_name(element)}") from None
    if value is None:
        return ""
    if isinstance(value, bytes):  # UN, OB...: only an empty one is a key we can take (a return key)
        return value.decode("latin-1").strip(" \0")
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def is_matching_key(element: DataElement) -> bool:
    """A key with a value to match (not a return key). Raises HeaderKeyError for a sequence
    key with more than one item (PS3.4 C.2.2.2.6 allows one)."""
    if element.tag.element == 0x0000:  # a group length
        return False
    if element.VR == "SQ":
        items = element.value or []
        if len(items) > 1:
            raise HeaderKeyError(status.UNABLE_TO_PROCESS, f"{_name(element)}: a sequence key holds one item")
        return bool(items) and any(is_matching_key(inner) for inner in items[0])
    return not _universal(value_text(element))


def header_keys(identifier: Dataset, indexed: set[str]) -> list[DataElement]:
    """The identifier's matching keys that only the stored headers can answer."""
    keys = []
    for element in identifier:
        tag = element.tag
        if tag.group in (0x0000, 0x0002) or tag.element == 0x0000 or tag.is_private or element.keyword in QUERY_ONLY:
            continue
        if element.keyword in indexed:
            continue
        if is_matching_key(element):
            keys.append(element)
    return keys


def describe(element: DataElement) -> str:
    """For the journal: `Keyword=value`, `Sequence>Keyword=value` for sequence keys."""
    if element.VR == "SQ":
        inner = [describe(e) for e in element.value[0] if is_matching_key(e)]
        return ", ".join(f"{_name(element)}>{part}" for part in inner)
    return f"{_name(element)}={value_text(element)}"


def _name(element: DataElement) -> str:
    return element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"


def _universal(text: str) -> bool:
    return any(not part.strip("*") for part in text.split("\\"))


# --- Matching one stored element -------------------------------------------------------------------


def check(keys: list[DataElement]) -> None:
    """Refuse keys we cannot match before any header is read."""
    for key in keys:
        if key.VR == "SQ":
            check([inner for inner in key.value[0] if is_matching_key(inner)])
        elif key.VR not in TEXT_VRS | NUMBER_VRS | DATE_TIME_VRS | {"UI"}:
            raise HeaderKeyError(status.UNABLE_TO_PROCESS, f"cannot match on {_name(key)} ({key.VR})")
        elif key.VR in NUMBER_VRS:
            _numbers(key)
        elif key.VR in DATE_TIME_VRS:
            _bounds(key.VR, value_text(key))


def matches(key: DataElement, stored: dict | None) -> bool:
    """Does the stored DICOM JSON element match the key?"""
    if key.VR == "SQ":
        inner = [e for e in key.value[0] if is_matching_key(e)]
        items = (stored or {}).get("Value") or []
        return any(isinstance(item, dict) and all(matches(e, item.get(f"{int(e.tag):08X}")) for e in inner)
                   for item in items)
    if not isinstance(stored, dict):
        return False
    values = stored.get("Value") or []
    vr = stored.get("vr") or key.VR
    if not values:
        return False
    text = value_text(key)
    if key.VR in NUMBER_VRS or vr in NUMBER_VRS:
        wanted = _numbers(key)
        return any(_number(v) in wanted for v in values)
    if vr == "PN":
        names = [v.get("Alphabetic", "") if isinstance(v, dict) else str(v) for v in values]
        if getattr(settings, "PACS_NAME_MATCHING", "insensitive") == "insensitive":
            return _any_text(text.upper(), [n.upper() for n in names])
        return _any_text(text, names)
    strings = [str(v).strip() for v in values]
    if vr == "UI":
        wanted = {uid.strip() for uid in text.split("\\")}
        return any(s in wanted for s in strings)
    if vr in DATE_TIME_VRS:
        low, high = _bounds(vr, text)
        return any(_within(vr, s, low, high) for s in strings)
    return _any_text(text, strings)


def _any_text(pattern_list: str, strings: list[str]) -> bool:
    patterns = [_pattern(part) for part in pattern_list.split("\\")]
    return any(p.fullmatch(s) for p in patterns for s in strings)


@functools.lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text.strip())
    return re.compile(body, re.DOTALL)


def _numbers(key: DataElement) -> set[float]:
    try:
        return {float(part) for part in value_text(key).split("\\")}
    except ValueError:
        raise HeaderKeyError(status.UNABLE_TO_PROCESS, f"{_name(key)} must be a number") from None


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bounds(vr: str, text: str) -> tuple[str, str]:
    """(low, high) as comparable strings; a single value is the range from itself to itself."""
    from .query import QueryError, _date, _range_parts, _time

    try:
        start, end = _range_parts(text) or (text, text)
        if vr == "DA":
            return (_date(start).strftime("%Y%m%d") if start else "",
                    _date(end).strftime("%Y%m%d") if end else "")
        if vr == "TM":
            return (_time(start, False) if start else "", _time(end, True) if end else "")
        if not all(re.fullmatch(r"[0-9.+-]*", part) for part in (start, end)):
            raise HeaderKeyError(status.UNABLE_TO_PROCESS, f"{text!r} is not a date-time")
        return start, end
    except QueryError as error:
        raise HeaderKeyError(error.status, error.reason) from None


def _within(vr: str, stored: str, low: str, high: str) -> bool:
    stored = stored.replace(":", "") if vr == "TM" else stored
    if vr == "DT":  # a bound covers everything it is a prefix of
        return (not low or stored >= low) and (not high or stored[:len(high)] <= high)
    return (not low or stored >= low) and (not high or stored <= high)


# --- Scanning the headers of the candidates ----------------------------------------------------------


def scan(instances, owner: str, keys: list[DataElement]) -> dict[int, int]:
    """{owner pk: pk of its first instance that matches every key} among `instances` (a
    queryset of the candidates' instances; `owner` the field of the entity answered, "pk" at
    IMAGE level). Refuses above PACS_QUERY_HEADER_SCAN_LIMIT headers."""
    check(keys)
    limit = settings.PACS_QUERY_HEADER_SCAN_LIMIT
    candidates = list(instances.order_by().values_list("pk", owner)[:limit + 1])
    if len(candidates) > limit:
        raise HeaderKeyError(status.OUT_OF_RESOURCES,
                             f"non-indexed keys: over {limit} headers to scan; add indexed keys")
    tag_keys = sorted({f"{int(key.tag):08X}" for key in keys})
    extracted = {f"h{tag_key}": HeaderElement(tag_key) for tag_key in tag_keys}
    present = {f"{name}__isnull": False for name in extracted}
    owner_of = dict(candidates)
    pks = sorted(owner_of)
    matched: dict[int, int] = {}
    for start in range(0, len(pks), BATCH):
        rows = (Instance.objects.filter(pk__in=pks[start:start + BATCH]).annotate(**extracted).filter(**present)
                .order_by("pk").values_list("pk", *extracted))
        for pk, *elements in rows:
            if owner_of[pk] in matched:
                continue
            stored = dict(zip(tag_keys, (_decoded(e) for e in elements)))
            if all(matches(key, stored.get(f"{int(key.tag):08X}")) for key in keys):
                matched[owner_of[pk]] = pk
    return matched


def _decoded(value):
    """The extracted element as a dict (some drivers hand JSON back as text)."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
