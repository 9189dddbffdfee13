"""WADO-RS (PS3.18 10.4): retrieve (multipart/related application/dicom, Download privilege),
metadata (DICOM JSON from the stored headers, bulk data as BulkDataURI), bulk data, frames, and
rendered images and thumbnails (pacsone/rendering.py). Every request is one journal entry for
its study; a hidden study is a 404.

Transfer syntax of a retrieve: `transfer-syntax=*` gives each file as stored; a named syntax is
given as stored when it is the stored one, else by re-encoding to it when it is uncompressed;
no parameter means Explicit VR Little Endian (PS3.18 8.7.3.5.2). The answer streams: one file
at a time, one frame at a time when decompressing (part10.py).
"""

import json
import logging

from django.http import HttpResponse, StreamingHttpResponse
from pydicom import dcmread
from pydicom.uid import UID

from accounts.privileges import Privilege
from audit.journal import Action

from .. import rendering, storage
from .. import humanize
from . import frames as frame_access
from . import multipart, part10
from .dicom_json import DICOM_JSON, BadRequest, absolute_url, check_uid, text_response, wants
from .reach import journal, reach, require

log = logging.getLogger(__name__)

DICOM = "application/dicom"
OCTET = "application/octet-stream"
RENDERED_TYPES = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png"}
AVAILABLE_SYNTAX = "00083002"


class NotAcceptable(Exception):
    pass


def _path_name(series_uid, sop_uid) -> str:
    return "instance" if sop_uid else "series" if series_uid else "study"


# --- Retrieve --------------------------------------------------------------------------------------


def asked_syntax(request) -> str:
    """The transfer syntax of the first acceptable media range for application/dicom parts."""
    for wanted in multipart.parse_accept(request.META.get("HTTP_ACCEPT", "")):
        if wanted.media_type not in ("*/*", "multipart/related", "multipart/*"):
            continue
        if wanted.params.get("type", DICOM).lower() not in (DICOM, "application/*", "*/*"):
            continue
        syntax = wanted.params.get("transfer-syntax", part10.EXPLICIT_VR_LITTLE_ENDIAN)
        if syntax == part10.ANY:
            return syntax
        try:
            check_uid(syntax, "transfer syntax")
        except BadRequest:
            continue
        if UID(syntax).is_transfer_syntax:
            return syntax
    raise NotAcceptable


def retrieve(request, study_uid, series_uid=None, sop_uid=None):
    what = f"dicomweb {_path_name(series_uid, sop_uid)} retrieve"
    # A study the caller may not see is a 404 first: whether they may download comes after.
    study, instances = reach(request, study_uid, series_uid, sop_uid, action=Action.DOWNLOAD)
    require(request, Privilege.DOWNLOAD, Action.DOWNLOAD, what, study_uid)
    try:
        syntax = asked_syntax(request)
    except NotAcceptable:
        return text_response(406, 'Accept multipart/related; type="application/dicom" (with a transfer-syntax).')
    stored_syntaxes = set(instances.values_list("transfer_syntax_uid", flat=True).distinct())
    givable = {s for s in stored_syntaxes if part10.can_give(s, syntax)}
    if not stored_syntaxes:
        return text_response(404, "This series holds no instances.")
    if not givable:
        return text_response(406, f"The instances cannot be given in transfer syntax {syntax}.")
    count = instances.filter(transfer_syntax_uid__in=givable).count()
    journal(request, Action.DOWNLOAD, study, what, f"{humanize.count(count, 'instance', 'instances')}, transfer syntax {syntax}")
    boundary = multipart.new_boundary()
    body = multipart.stream(boundary, _dicom_parts(instances.filter(transfer_syntax_uid__in=givable), syntax))
    response = StreamingHttpResponse(body, content_type=multipart.content_type(boundary, DICOM))
    if givable != stored_syntaxes:
        response["Warning"] = f'299 pacsone "Instances whose transfer syntax cannot be given as {syntax} are left out"'
    return response


def _dicom_parts(instances, syntax: str):
    for instance in instances.iterator(chunk_size=200):
        try:
            chunks = part10.instance_chunks(instance, syntax)
        except part10.NotAvailable as error:
            log.warning("dicomweb retrieve skipped sop=%s reason=%s", instance.sop_instance_uid, error)
            continue
        given = part10.given_syntax(instance, syntax)
        yield {"Content-Type": f"{DICOM}; transfer-syntax={given}"}, chunks


# --- Metadata and bulk data ---------------------------------------------------------------------------


def instance_url(request, study_uid: str, series_uid: str, sop_uid: str) -> str:
    return absolute_url(request, f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}")


def metadata_json(header: dict, base_url: str, transfer_syntax: str) -> dict:
    """An instance's stored header as WADO-RS metadata: bulk data (at any depth) as the
    BulkDataURI of the bulkdata resource, `.../bulkdata/<tag>` at the top level and
    `.../bulkdata/<sequence tag>/<item index from 0>/<tag>...` inside sequences."""
    result = {}
    for tag, element in header.items():
        if tag.startswith("0002"):
            continue
        result[tag] = _with_bulk_uris(element, f"{base_url}/bulkdata/{tag}")
    result[AVAILABLE_SYNTAX] = {"vr": "UI", "Value": [transfer_syntax]}
    return dict(sorted(result.items()))


def _with_bulk_uris(element: dict, uri: str) -> dict:
    if "BulkDataURI" in element:
        return {"vr": element.get("vr", "OB"), "BulkDataURI": uri}
    if element.get("vr") == "SQ" and element.get("Value"):
        items = [{tag: _with_bulk_uris(inner, f"{uri}/{index}/{tag}") for tag, inner in item.items()}
                 for index, item in enumerate(element["Value"])]
        return {"vr": "SQ", "Value": items}
    return element


def metadata(request, study_uid, series_uid=None, sop_uid=None):
    if not wants(request, DICOM_JSON, "application/json"):
        return text_response(406, "Metadata is application/dicom+json only.")
    study, instances = reach(request, study_uid, series_uid, sop_uid)
    what = f"dicomweb {_path_name(series_uid, sop_uid)} metadata"
    journal(request, Action.VIEW, study, what)
    rows = instances.values_list("series__series_instance_uid", "sop_instance_uid", "transfer_syntax_uid", "header")

    def body():
        yield b"["
        for number, (series, sop, syntax, header) in enumerate(rows.iterator(chunk_size=200)):
            item = metadata_json(header or {}, instance_url(request, study_uid, series, sop), syntax)
            yield (b"," if number else b"") + json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        yield b"]"

    return StreamingHttpResponse(body(), content_type=DICOM_JSON)


MAX_BULK_PATH_DEPTH = 8  # sequences nested deeper than this are refused


def bulk_data_path(text: str) -> list[int | str]:
    """'00283000/0/00283006' -> [0x00283000, 0, 0x00283006]: tags (eight hex digits) and item
    indexes (from 0) in turn, ending with a tag; a 400 for anything else."""
    parts = text.strip("/").split("/")
    if len(parts) % 2 == 0 or len(parts) > 2 * MAX_BULK_PATH_DEPTH + 1:
        raise BadRequest("A bulk data path is tag[/item/tag...]: eight hexadecimal digits per tag, "
                         f"item numbers from 0, at most {MAX_BULK_PATH_DEPTH} sequences deep.")
    path = []
    for position, part in enumerate(parts):
        if position % 2 == 0:
            if len(part) != 8 or any(c not in "0123456789ABCDEFabcdef" for c in part):
                raise BadRequest("A bulk data tag is eight hexadecimal digits.")
            path.append(int(part, 16))
        else:
            if not part.isdigit() or len(part) > 6:
                raise BadRequest("An item number in a bulk data path is a whole number from 0.")
            path.append(int(part))
    return path


def _element_at(ds, path: list) -> object:
    """The data element a bulk data path names, None when there is none."""
    element = ds.get(path[0])
    for index, tag in zip(path[1::2], path[2::2]):
        if element is None or element.VR != "SQ" or index >= len(element.value):
            return None
        element = element.value[index].get(tag)
    return element


def bulkdata(request, study_uid, series_uid, sop_uid, tag_path):
    study, instances = reach(request, study_uid, series_uid, sop_uid)
    path = bulk_data_path(tag_path)
    instance = instances.get()
    journal(request, Action.VIEW, study, "dicomweb bulk data", f"instance {sop_uid}, bulk data {tag_path.upper()}")
    try:
        with storage.open_stored(instance) as f:
            # Only the top-level element the path starts with is read; the others are skipped.
            ds = dcmread(f, stop_before_pixels=path[0] != 0x7FE00010, specific_tags=[path[0]])
            element = _element_at(ds, path)
    except FileNotFoundError:
        return text_response(404, "The stored file is missing.")
    if element is None or not isinstance(element.value, (bytes, bytearray)):
        return text_response(404, "This instance has no such bulk data element.")
    boundary = multipart.new_boundary()
    body = b"".join(multipart.stream(boundary, [({"Content-Type": OCTET}, [bytes(element.value)])]))
    return HttpResponse(body, content_type=multipart.content_type(boundary, OCTET))


# --- Frames -----------------------------------------------------------------------------------------


def frames_as_stored(request, stored_syntax: str) -> bool:
    """True when the client takes the frames as stored, False for decoded native pixels; raises
    NotAcceptable when it takes neither."""
    stored_media = frame_access.stored_media_type(stored_syntax)
    for wanted in multipart.parse_accept(request.META.get("HTTP_ACCEPT", "")):
        if wanted.media_type in ("*/*", "multipart/*"):
            return False
        if wanted.media_type != "multipart/related":
            continue
        part = wanted.params.get("type", OCTET).lower()
        syntax = wanted.params.get("transfer-syntax", "")
        if part in (OCTET, "*/*", "application/*"):
            if syntax in ("*", stored_syntax):
                return True
            if syntax in ("", part10.EXPLICIT_VR_LITTLE_ENDIAN):
                return False
        elif part == stored_media and syntax in ("", "*", stored_syntax):
            return True
    raise NotAcceptable


def frames(request, study_uid, series_uid, sop_uid, frame_list):
    study, instances = reach(request, study_uid, series_uid, sop_uid)
    instance = instances.get()
    try:
        numbers = frame_access.parse_frame_list(frame_list)
        as_stored = frames_as_stored(request, instance.transfer_syntax_uid)
        journal(request, Action.VIEW, study, "dicomweb frames", f"instance {sop_uid}, frames {frame_list[:200]}")
        found = frame_access.frames(instance, numbers, as_stored)
    except frame_access.FrameError as error:
        return text_response(error.status, str(error))
    except NotAcceptable:
        return text_response(406, "Frames are given as multipart/related application/octet-stream "
                                  "(decoded, or transfer-syntax=* as stored) or in their stored image type.")
    boundary = multipart.new_boundary()
    part_type = found[0].media_type.split(";")[0]
    body = b"".join(multipart.stream(boundary, (({"Content-Type": frame.media_type}, [frame.data])
                                                for frame in found)))
    response = HttpResponse(body, content_type=multipart.content_type(boundary, part_type))
    response["Cache-Control"] = "private, max-age=600"
    return response


# --- Rendered images and thumbnails ----------------------------------------------------------------------


def _render_request(request, frame: int, thumbnail: bool) -> rendering.RenderRequest:
    fmt = None
    for wanted in multipart.parse_accept(request.META.get("HTTP_ACCEPT", "")):
        if wanted.media_type in RENDERED_TYPES:
            fmt = RENDERED_TYPES[wanted.media_type]
            break
        if wanted.media_type in ("*/*", "image/*"):
            fmt = "jpeg"
            break
    if fmt is None:
        raise NotAcceptable
    params = {"frame": str(frame), "format": fmt}
    window = request.GET.get("window", "")
    if window:
        parts = window.split(",")
        if len(parts) < 2:
            raise BadRequest("window is center,width[,function]")
        params["wc"], params["ww"] = parts[0], parts[1]
    viewport = request.GET.get("viewport", "")
    if viewport:
        try:
            params["size"] = str(max(int(v) for v in viewport.split(",")[:2]))
        except ValueError:
            raise BadRequest("viewport is width,height") from None
    try:
        return rendering.parse_request(params, thumbnail=thumbnail)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def rendered(request, study_uid, series_uid=None, sop_uid=None, frame_number=None, thumbnail=False):
    """An instance's (or frame's) rendered image; for a study or series thumbnail, its first
    instance's."""
    study, instances = reach(request, study_uid, series_uid, sop_uid)
    try:
        frame = 0 if frame_number is None else frame_access.parse_frame_list(frame_number)[0] - 1
        wanted = _render_request(request, frame, thumbnail)
    except frame_access.FrameError as error:
        return text_response(error.status, str(error))
    except BadRequest as error:
        return text_response(400, str(error))
    except NotAcceptable:
        return text_response(406, "Rendered images are image/jpeg or image/png.")
    instance = instances.first()
    if instance is None:
        return text_response(404, "No instance to render.")
    what = f"dicomweb {_path_name(series_uid, sop_uid)} {'thumbnail' if thumbnail else 'rendered'}"
    journal(request, Action.VIEW, study, what, f"instance {instance.sop_instance_uid}")
    try:
        data = rendering.render(instance, wanted)
    except rendering.RenderError as error:
        return text_response(422 if "missing" not in str(error) else 404, str(error))
    response = HttpResponse(data, content_type=rendering.content_type(wanted))
    response["Cache-Control"] = "private, max-age=600"
    return response
