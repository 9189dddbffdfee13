"""QIDO-RS (PS3.18 10.6): studies, series and instances searches, answered by the same code as
C-FIND (pacsone/dicom/query.py: the indexed columns first, then the stored headers for any other
key), from the index and the stored DICOM JSON headers only, never a file.

A request becomes a C-FIND identifier: each `attribute=value` a matching key (a keyword or a tag;
repeated keys or commas in a UID or code value make a list), `includefield` return keys (or
`all`: the stored header of the answering instance), the UIDs in the path matching keys. The
search runs within the studies the caller may see (pacsone/access.py), so a hidden study, its
series and instances are simply absent. `limit`/`offset` page the answers (primary-key order,
stable between pages); at most MAX_RESULTS are returned at once, with a Warning
header when more remain. `fuzzymatching=true` is not supported: literal matching is done and
a Warning header says so (PS3.18 8.3.4.1).
"""

import datetime
import itertools

from django.http import HttpResponse
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from audit.journal import Action, Outcome, record

from ..access import studies_for
from ..humanize import count
from ..dicom import query as cfind
from .dicom_json import (DICOM_JSON, RETRIEVE_URL, BadRequest, absolute_url, attribute_tag, check_uid,
                         json_response, text_response, vr_of, wants)

CHARSET = "00080005"
CREATION_DATE = "00080012"
RESERVED = {"includefield", "limit", "offset", "fuzzymatching"}
MAX_RESULTS = 1000
NUMBER_VRS = {"US": int, "SS": int, "UL": int, "SL": int, "SV": int, "UV": int, "FL": float, "FD": float}
LIST_VRS = {"UI", "CS", "AE", "SH", "LO", "PN"}

# The attributes each level returns by default (PS3.18 Tables 10.6.3-3 to -5).
STUDY_FIELDS = ["StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
                "ReferringPhysicianName", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                "StudyDescription"]
SERIES_FIELDS = ["Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
                 "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
                 "PerformedProcedureStepStartTime", "SeriesDate", "SeriesTime", "BodyPartExamined"]
INSTANCE_FIELDS = ["SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "InstanceNumber", "Rows", "Columns",
                   "BitsAllocated", "NumberOfFrames"]
# Study attributes also returned when series or instances are searched across studies.
STUDY_CONTEXT = ["StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "PatientName", "PatientID",
                 "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDescription"]
SERIES_CONTEXT = ["Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription"]
# Leaving out of `includefield=all` what belongs to no single answer of the level.
NOT_IN_ALL = {
    cfind.STUDY: {"0020000E", "00080018", "00200013", "00080060", "0008103E", "00200011"},
    cfind.SERIES: {"00080018", "00200013"},
    cfind.IMAGE: set(),
}


class _JsonAnswerer(cfind.Answerer):
    """The C-FIND answers of a query as DICOM JSON, built straight from the index rows and the
    stored JSON headers (a pydicom Dataset per answer, then its JSON, costs about a millisecond
    an answer: most of a search's time)."""

    def json_answers(self):
        """(answer as DICOM JSON, the header it was built from) pairs."""
        elements = [e for e in self.query.identifier if e.keyword not in cfind.NOT_RETURNED]
        for row, header in self.rows():
            answer = {}
            for element in elements:
                tag, vr, keyword = f"{int(element.tag):08X}", element.VR, element.keyword
                if keyword in self.columns:
                    answer[tag] = _json_element(vr, row[self.columns[keyword]])
                elif keyword in self.computed:
                    value = row[self.computed[keyword]]
                    if keyword == "ModalitiesInStudy":
                        value = [m for m in (value or "").split("\\") if m]
                    answer[tag] = _json_element(vr, value)
                elif keyword == "InstanceAvailability":
                    answer[tag] = {"vr": "CS", "Value": ["ONLINE"]}
                elif keyword != "RetrieveAETitle":
                    answer[tag] = header.get(tag) or {"vr": vr}
            yield answer, header


def _json_element(vr: str, value) -> dict:
    """One value from an index column (or a list of them) as a DICOM JSON element."""
    values = value if isinstance(value, list) else [] if value in (None, "") else [value]
    if not values:
        return {"vr": vr}
    if vr == "DA":
        values = [v.strftime("%Y%m%d") if isinstance(v, datetime.date) else str(v) for v in values]
    elif vr == "PN":
        values = [dict(zip(("Alphabetic", "Ideographic", "Phonetic"), str(v).split("="))) for v in values]
    elif vr in ("IS", "US", "UL", "SS", "SL"):
        values = [int(v) for v in values]
    return {"vr": vr, "Value": values}


def _element(tag, values: list[str]) -> DataElement:
    vr = vr_of(tag)
    if vr == "SQ":
        raise BadRequest(f"{tag} is a sequence: match on its items' attributes is not supported here")
    if vr in LIST_VRS:
        values = [part for value in values for part in value.split(",")]
    text = "\\".join(v.strip() for v in values)
    if vr in NUMBER_VRS and text:
        try:
            return DataElement(tag, vr, [NUMBER_VRS[vr](v) for v in text.split("\\")])
        except ValueError:
            raise BadRequest(f"{tag} takes numbers, not {text[:80]!r}") from None
    try:
        return DataElement(tag, vr, text)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(f"{tag} cannot hold {text[:80]!r}") from None


def _empty(tag) -> DataElement:
    vr = vr_of(tag)
    return DataElement(tag, vr, [] if vr == "SQ" else None)


def _include_fields(params) -> tuple[list, bool]:
    names = [name.strip() for value in params.getlist("includefield") for name in value.split(",") if name.strip()]
    return [attribute_tag(name) for name in names if name != "all"], "all" in names


def _number(params, name: str, default: int) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    if not text.isdigit():
        raise BadRequest(f"{name} must be a whole number of 0 or more, not {text[:20]!r}")
    return int(text)


def build_identifier(params, level: str, path_uids: dict[str, str], across_studies: bool) -> tuple[Dataset, bool]:
    """(C-FIND identifier, whether `includefield=all` was asked) of a QIDO request."""
    ds = Dataset()
    defaults = {cfind.STUDY: STUDY_FIELDS, cfind.SERIES: SERIES_FIELDS, cfind.IMAGE: INSTANCE_FIELDS}[level]
    if across_studies:
        defaults = defaults + STUDY_CONTEXT
    if level == cfind.IMAGE and "SeriesInstanceUID" not in path_uids:
        defaults = defaults + SERIES_CONTEXT  # instances across series: which series each is in
    for keyword in defaults:
        tag = attribute_tag(keyword)
        ds[tag] = _empty(tag)
    includes, everything = _include_fields(params)
    for tag in includes:
        if tag not in ds:
            ds[tag] = _empty(tag)
    for name in params:
        if name.lower() in RESERVED:
            continue
        if "." in name:
            raise BadRequest(f"{name[:80]!r}: matching on sequence items is not supported")
        tag = attribute_tag(name)
        ds[tag] = _element(tag, params.getlist(name))
    for keyword, uid in path_uids.items():
        ds[attribute_tag(keyword)] = DataElement(attribute_tag(keyword), "UI", uid)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if keyword in ds and keyword not in path_uids:
            listed = ds[keyword].value
            for uid in (listed if isinstance(listed, (list, MultiValue)) else str(listed or "").split("\\")):
                if str(uid).strip():
                    check_uid(str(uid).strip(), keyword)
    if everything and "InstanceCreationDate" not in ds:
        ds.InstanceCreationDate = None  # a header return key: the answerer then reads the header
    ds.QueryRetrieveLevel = level
    return ds, everything


def _retrieve_url(request, level: str, answer: dict) -> str | None:
    def uid(tag):
        values = (answer.get(tag) or {}).get("Value") or []
        return values[0] if values else None

    parts = [("studies", uid("0020000D"))]
    if level in (cfind.SERIES, cfind.IMAGE):
        parts.append(("series", uid("0020000E")))
    if level == cfind.IMAGE:
        parts.append(("instances", uid("00080018")))
    if any(value is None for _, value in parts):
        return None
    return absolute_url(request, "/dicomweb/" + "/".join(f"{name}/{value}" for name, value in parts))


def answer_json(request, level: str, answer: dict, header: dict, everything: bool) -> dict:
    result = {}
    if everything:
        hidden = NOT_IN_ALL[level]
        for tag, element in header.items():
            if tag.startswith(("0002", "7FE0")) or tag in hidden or "BulkDataURI" in element:
                continue
            result[tag] = element
    result.update(answer)
    if everything and CREATION_DATE not in header:
        del result[CREATION_DATE]  # asked only to have the header read
    result.pop(CHARSET, None)  # DICOM JSON is Unicode: a character set describes no bytes here
    url = _retrieve_url(request, level, result)
    if url:
        result[RETRIEVE_URL] = {"vr": "UR", "Value": [url]}
    return dict(sorted(result.items()))


def _scope(user):
    """The studies the search runs within (pacsone/access.py). When the rule leaves them all
    (View), no scope: `id IN (every study)` would only cost the database a pass over the table."""
    visible = studies_for(user)
    return None if not visible.query.where else visible


def search(request, level: str, path_uids: dict[str, str]) -> HttpResponse:
    if not wants(request, DICOM_JSON, "application/json"):
        return text_response(406, "QIDO-RS answers application/dicom+json only.")
    params = request.GET
    across = "StudyInstanceUID" not in path_uids and level != cfind.STUDY
    try:
        identifier, everything = build_identifier(params, level, path_uids, across)
        limit = min(_number(params, "limit", MAX_RESULTS) or MAX_RESULTS, MAX_RESULTS)
        offset = _number(params, "offset", 0)
        query = cfind.build_query(identifier, cfind.STUDY_ROOT, _scope(request.user))
        answers = cfind.time_limited_answers(_JsonAnswerer(query).json_answers())
        page = list(itertools.islice(answers, offset, offset + limit + 1))
    except BadRequest as error:
        return text_response(400, str(error))
    except cfind.QueryError as error:
        record(Action.SEARCH, request=request, target=f"dicomweb {level.lower()} search", outcome=Outcome.FAILURE,
               detail=error.reason[:500])
        return text_response(400, error.reason)
    more = len(page) > limit
    body = [answer_json(request, level, answer, header, everything) for answer, header in page[:limit]]
    record(Action.SEARCH, request=request, target=f"dicomweb {level.lower()} search",
           detail=f"{query.describe()} limit={limit} offset={offset}: {count(len(body), 'answer', 'answers')}"[:1000])
    response = json_response(body)
    warnings = []
    if more:
        warnings.append(f'299 pacsone "There are additional results that can be requested (offset={offset + limit})"')
    if params.get("fuzzymatching", "").lower() == "true":
        warnings.append('299 pacsone "The fuzzymatching parameter is not supported. '
                        'Only literal matching has been performed."')
    if warnings:
        response["Warning"] = ", ".join(warnings)
    return response
