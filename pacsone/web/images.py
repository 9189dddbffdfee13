"""Images in the browser: thumbnails, rendered frames, the viewer page and the header dump.

Instances are reached through their visible study (invariant 2). Opening the viewer or a
header is journaled as a VIEW; the frames and thumbnails a page then loads are not journaled
one by one (the page's entry covers them).
"""

import json
from itertools import chain, islice

import numpy as np

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from audit.journal import Action, record

from .. import humanize, rendering
from ..humanize import count
from ..access import access_instance, access_series
from ..models import Instance
from ..rendering import RenderError
from .studies import permissions, subject

BROWSER_CACHE = "private, max-age=600"
HEADER_VALUE_CHARS = 200
MAX_HEADER_ROWS = 5000
# Window presets offered for every CT (centre, width), after the header's own windows.
CT_PRESETS = [("Soft tissue", 40, 400), ("Lung", -600, 1500), ("Bone", 400, 1800), ("Brain", 40, 80),
              ("Liver", 60, 160)]
OVERLAY_FIELDS = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyDescription",
                  "SeriesDescription", "Modality", "InstitutionName", "SliceThickness", "KVP"]


def _image_response(request, study_uid: str, sop_uid: str, *, thumbnail: bool) -> HttpResponse:
    instance = access_instance(request, study_uid, sop_uid)
    try:
        wanted = rendering.parse_request(request.GET, thumbnail=thumbnail)
    except ValueError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    try:
        data = rendering.render(instance, wanted)
    except RenderError as error:
        # 422: the request was fine, this image cannot be shown; the viewer displays the reason.
        response = HttpResponse(str(error), status=422, content_type="text/plain; charset=utf-8")
        response["X-Render-Error"] = str(error)[:200].encode("ascii", "replace").decode()
        return response
    response = HttpResponse(data, content_type=rendering.content_type(wanted))
    response["Cache-Control"] = BROWSER_CACHE
    return response


@login_required
def thumbnail(request, study_uid: str, sop_uid: str):
    return _image_response(request, study_uid, sop_uid, thumbnail=True)


@login_required
def frame(request, study_uid: str, sop_uid: str):
    return _image_response(request, study_uid, sop_uid, thumbnail=False)


def _header_value(element) -> str:
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or element.tag == 0x7FE00010:
        length = len(element.value) if element.value is not None else 0
        return f"({length} bytes)"
    text = str(element.value)
    return text if len(text) <= HEADER_VALUE_CHARS else text[:HEADER_VALUE_CHARS] + "…"


def header_rows(ds: Dataset, depth: int = 0):
    """(depth, tag, name, VR, value) for every element, sequence items nested."""
    for element in ds:
        if element.VR == "SQ":
            yield depth, str(element.tag), element.name, "SQ", count(len(element.value), "item", "items")
            for number, item in enumerate(element.value, 1):
                yield depth + 1, "", f"Item {number}", "", ""
                yield from header_rows(item, depth + 2)
        else:
            yield depth, str(element.tag), element.name, element.VR, _header_value(element)


@login_required
def header_dump(request, study_uid: str, sop_uid: str):
    """Every attribute of the stored file (without pixel data), as in dcmdump."""
    instance = access_instance(request, study_uid, sop_uid)
    try:
        ds = rendering.read_instance(instance, pixels=False)
        rows = list(islice(chain(header_rows(ds.file_meta), header_rows(ds)), MAX_HEADER_ROWS + 1))
        problem = ""
        if len(rows) > MAX_HEADER_ROWS:  # e.g. a structure set with thousands of contours
            rows, problem = rows[:MAX_HEADER_ROWS], f"Only the first {MAX_HEADER_ROWS} rows are shown."
    except (RenderError, InvalidDicomError, OSError) as error:
        rows, problem = [], f"The file cannot be read: {error}"
    record(Action.VIEW, request=request, target=f"header of {sop_uid}"[:255], **subject(instance.study))
    return render(request, "pacsone/header.html", {
        "instance": instance, "study": instance.study, "rows": rows, "problem": problem,
    })


def _header_windows(first: Instance) -> list[dict]:
    """The windows the header names (Window Center/Width, with their explanations); values
    that are not numbers, or a width below 1, are left out rather than failing the page."""
    centers, widths = _values(first.header, "00281050"), _values(first.header, "00281051")
    explanations = _values(first.header, "00281055")
    windows = []
    for number, (center, width) in enumerate(zip(centers, widths)):
        try:
            center, width = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if width >= 1:
            label = explanations[number] if number < len(explanations) else f"Header {number + 1}"
            windows.append({"label": str(label), "wc": center, "ww": width})
    return windows


def _presets(first: Instance | None, modality: str) -> list[dict]:
    """Window presets: the header's own windows first, then the usual CT ones; a window that is
    already listed (the header's "SOFT 40/400" and our "Soft tissue 40/400") is listed once."""
    presets = _header_windows(first) if first is not None else []
    if modality == "CT":
        presets += [{"label": label, "wc": wc, "ww": ww} for label, wc, ww in CT_PRESETS]
    seen, unique = set(), []
    for preset in presets:
        key = (float(preset["wc"]), float(preset["ww"]))
        if key not in seen:
            seen.add(key)
            unique.append(preset)
    return unique


def _values(header: dict, tag: str) -> list:
    """The values of one attribute in an instance's DICOM JSON header."""
    values = (header.get(tag) or {}).get("Value") or []
    return [_person_name(v) if isinstance(v, dict) else v for v in values]


def _person_name(value: dict) -> str:
    """A DICOM JSON person name as written in DICOM (`Yamada^Tarou=山田^太郎=やまだ^たろう`):
    a name held only in its ideographic group must not show as no name."""
    groups = [value.get(group, "") for group in ("Alphabetic", "Ideographic", "Phonetic")]
    return "=".join(groups).rstrip("=")


def _overlay(first: Instance | None) -> dict[str, str]:
    """The corners' text, formatted as every page formats it (pacsone.humanize): `DOE, John`,
    `2026-11-30`, the sex with the age on the study's date."""
    if first is None:
        return {}
    raw = {}
    for keyword in OVERLAY_FIELDS:
        values = _values(first.header, f"{tag_for_keyword(keyword):08X}")
        if values:
            raw[keyword] = " ".join(str(v) for v in values).strip()
    overlay = dict(raw)
    if "PatientName" in raw:
        overlay["PatientName"] = humanize.person_name(raw["PatientName"])
    for keyword in ("PatientBirthDate", "StudyDate"):
        if keyword in raw:
            overlay[keyword] = humanize.date(raw[keyword]) or raw[keyword]
    if "PatientSex" in raw or "PatientBirthDate" in raw:
        overlay["PatientSex"] = humanize.age_and_sex(humanize.dicom_date(raw.get("PatientBirthDate")),
                                                     raw.get("PatientSex"), humanize.dicom_date(raw.get("StudyDate")))
    return overlay


def _default_window(first: Instance | None) -> dict | None:
    """The window the default rendering uses, as the starting point of window dragging."""
    if first is None:
        return None
    named = _header_windows(first)
    if named:
        return {"wc": named[0]["wc"], "ww": named[0]["ww"]}
    try:
        window = rendering.default_window(rendering.read_instance(first))
    except (RenderError, InvalidDicomError, OSError):
        return None
    return {"wc": window.center, "ww": window.width} if window else None


def _frame_count(instance: Instance) -> int:
    try:
        return max(int((_values(instance.header, "00280008") or [1])[0]), 1)
    except (TypeError, ValueError):
        return 1  # an unreadable Number of Frames: show the first


def _cine_rate(first: Instance | None) -> int | None:
    """Frames per second the modality recorded (Cine Rate, else Frame Time), for cine."""
    if first is None:
        return None
    try:
        rate = float((_values(first.header, "00180040") or [0])[0])
        frame_time = float((_values(first.header, "00181063") or [0])[0])
    except (TypeError, ValueError):
        return None
    fps = rate or (1000 / frame_time if frame_time > 0 else 0)
    return max(1, min(60, round(fps))) if fps else None


def _frame_values(instance: Instance, number: int) -> tuple[bytes, dict]:
    """One grayscale frame's values in modality units and what the viewer needs to read them:
    little-endian int16 when every value is a whole number in its range, else float32.
    RenderError, InvalidDicomError or OSError when it cannot be sent so."""
    values, inverted = rendering.modality_frame(rendering.read_instance(instance), number)
    whole = np.all(np.mod(values, 1) == 0) and values.min() >= -32768 and values.max() <= 32767
    data = values.astype("<i2" if whole else "<f4")
    return data.tobytes(), {"type": "int16" if whole else "float32", "rows": data.shape[0],
                            "columns": data.shape[1], "monochrome1": inverted}


def _refusal(error: Exception) -> tuple[int, str]:
    if isinstance(error, RenderError):
        return (415 if "grayscale" in str(error) else 422), str(error)
    return 422, "the file cannot be read"


@login_required
def pixels(request, study_uid: str, sop_uid: str):
    """One grayscale frame's values in modality units, for the viewer to window in the browser,
    with the frame's size in headers. 415 for colour images (the viewer asks for PNGs instead)."""
    instance = access_instance(request, study_uid, sop_uid)
    try:
        number = int(request.GET.get("frame", "0"))
        if number < 0:
            raise ValueError
    except ValueError:
        return HttpResponseBadRequest("frame must be a number from 0", content_type="text/plain")
    try:
        data, about = _frame_values(instance, number)
    except (RenderError, InvalidDicomError, OSError) as error:
        status, reason = _refusal(error)
        return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
    response = HttpResponse(data, content_type="application/octet-stream")
    response["X-Pixel-Type"] = about["type"]
    response["X-Rows"], response["X-Columns"] = str(about["rows"]), str(about["columns"])
    response["X-Monochrome1"] = "1" if about["monochrome1"] else "0"
    response["Cache-Control"] = BROWSER_CACHE
    return response


MAX_BATCH_FRAMES = 32


@login_required
def series_pixels(request, study_uid: str, series_uid: str):
    """Several frames of one series in one answer (`?f=<sop>:<frame>`, at most 32), so that a
    scroll through a long stack costs one request per 16 or 32 images instead of one per image.
    Body: a 4-byte little-endian length, that many bytes of JSON (one entry per frame asked, in
    order: type, rows, columns, monochrome1, offset and length in the data that follows; or
    status and reason for a frame that cannot be sent so), then the frames' values."""
    series = access_series(request, study_uid, series_uid)
    wanted = request.GET.getlist("f")
    if not wanted or len(wanted) > MAX_BATCH_FRAMES:
        return HttpResponseBadRequest(f"ask for 1 to {MAX_BATCH_FRAMES} frames (f=<sop>:<frame>)",
                                      content_type="text/plain")
    asked = []
    for item in wanted:
        sop, _, number = item.rpartition(":")
        if not sop or not number.isdigit():
            return HttpResponseBadRequest("each f is <SOP Instance UID>:<frame number from 0>", content_type="text/plain")
        asked.append((sop, int(number)))
    instances = {instance.sop_instance_uid: instance for instance in series.instances.filter(
        sop_instance_uid__in={sop for sop, _ in asked}).select_related("storage_location")}
    entries, chunks, offset = [], [], 0
    for sop, number in asked:
        instance = instances.get(sop)
        if instance is None:
            entries.append({"status": 404, "reason": "not an image of this series"})
            continue
        try:
            data, about = _frame_values(instance, number)
        except (RenderError, InvalidDicomError, OSError) as error:
            status, reason = _refusal(error)
            entries.append({"status": status, "reason": reason})
            continue
        entries.append({**about, "offset": offset, "length": len(data)})
        chunks.append(data)
        offset += len(data)
    head = json.dumps(entries).encode()
    response = HttpResponse(b"".join([len(head).to_bytes(4, "little"), head, *chunks]),
                            content_type="application/octet-stream")
    response["Cache-Control"] = BROWSER_CACHE
    return response


def main_series(series_list) -> object | None:
    """The series a study opens on: the one with the most images (the CT stack, not the
    one-image scout), the first of them on a tie."""
    best = None
    for series in series_list:
        if best is None or series.number_of_instances > best.number_of_instances:
            best = series
    return best


def viewer_data(request, series) -> dict:
    """What the viewer script needs to show one series: its stack, presets, overlay, window."""
    study = series.study
    instances = list(series.instances.order_by("instance_number", "pk").only(
        "sop_instance_uid", "instance_number", "header", "series_id", "storage_location_id", "file_path"))
    stack = []
    for instance in instances:
        base = reverse("instance-frame", args=[study.study_instance_uid, instance.sop_instance_uid])
        stack.append({
            "sop": instance.sop_instance_uid, "number": instance.instance_number,
            "frames": _frame_count(instance), "url": base,
            "pixels": reverse("instance-pixels", args=[study.study_instance_uid, instance.sop_instance_uid]),
            "header": reverse("instance-header", args=[study.study_instance_uid, instance.sop_instance_uid]),
            "location": (_values(instance.header, "00201041") or [""])[0],
        })
    first = instances[0] if instances else None
    return {"stack": stack, "presets": _presets(first, series.modality), "overlay": _overlay(first),
            "default_window": _default_window(first), "fps": _cine_rate(first),
            "series_uid": series.series_instance_uid, "modality": series.modality,
            "pixels_batch": reverse("series-pixels", args=[study.study_instance_uid, series.series_instance_uid]),
            "url": reverse("viewer", args=[study.study_instance_uid, series.series_instance_uid]),
            "data_url": reverse("viewer-data", args=[study.study_instance_uid, series.series_instance_uid])}


@login_required
def viewer_json(request, study_uid: str, series_uid: str):
    """Another series of the study for the open viewer, which keeps its window, zoom and place."""
    series = access_series(request, study_uid, series_uid)
    record(Action.VIEW, request=request, target=f"viewer series {series.series_number or ''}".strip(),
           **subject(series.study))
    return JsonResponse(viewer_data(request, series))


@login_required
def viewer(request, study_uid: str, series_uid: str):
    """The viewer of one series: its images (and their frames) as one stack; the study's other
    series open in place (viewer_json)."""
    series = access_series(request, study_uid, series_uid)
    study = series.study
    record(Action.VIEW, request=request, target=f"viewer series {series.series_number or ''}".strip(),
           **subject(study))
    return render(request, "pacsone/viewer.html", {
        "series": series, "study": study, "patient": study.patient, "may": permissions(request.user),
        "viewer_data": viewer_data(request, series),
        "other_series": study.series.order_by("series_number", "pk"),
    })
