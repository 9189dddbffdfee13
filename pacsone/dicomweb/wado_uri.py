"""WADO-URI (PS3.18 9): one object by its three UIDs, `/wado?requestType=WADO&studyUID=...
&seriesUID=...&objectUID=...`, as a rendered image (image/jpeg, the default, or image/png; with
frameNumber, windowCenter/windowWidth, rows/columns) or as the DICOM file itself
(contentType=application/dicom, optional transferSyntax; the Download privilege), under the same
access rules and journal as WADO-RS."""

from django.http import HttpResponse, StreamingHttpResponse

from accounts.privileges import Privilege
from audit.journal import Action

from .. import rendering
from . import part10
from .dicom_json import BadRequest, check_uid, text_response
from .reach import journal, reach, require

IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/*": "jpeg", "*/*": "jpeg"}


def _render_request(params, fmt: str) -> rendering.RenderRequest:
    values = {"format": fmt}
    frame = params.get("frameNumber", "")
    if frame:
        if not frame.isdigit() or int(frame) < 1:
            raise BadRequest("frameNumber starts at 1")
        values["frame"] = str(int(frame) - 1)
    values["wc"], values["ww"] = params.get("windowCenter", ""), params.get("windowWidth", "")
    sides = [params.get(name, "") for name in ("rows", "columns") if params.get(name, "")]
    if sides:
        if not all(side.isdigit() for side in sides):
            raise BadRequest("rows and columns are whole numbers")
        values["size"] = str(max(int(side) for side in sides))
    try:
        return rendering.parse_request(values)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def wado(request):
    params = request.GET
    try:
        if params.get("requestType") != "WADO":
            raise BadRequest("requestType must be WADO")
        uids = [check_uid(params.get(name, ""), name) for name in ("studyUID", "seriesUID", "objectUID")]
        kinds = [kind.split(";")[0].strip().lower() for kind in params.get("contentType", "image/jpeg").split(",")]
    except BadRequest as error:
        return text_response(400, str(error))
    if "application/dicom" in kinds:
        return _dicom(request, uids, params.get("transferSyntax", part10.EXPLICIT_VR_LITTLE_ENDIAN))
    fmt = next((IMAGE_TYPES[kind] for kind in kinds if kind in IMAGE_TYPES), None)
    if fmt is None:
        return text_response(406, "contentType must be image/jpeg, image/png or application/dicom.")
    study, instances = reach(request, *uids)
    try:
        wanted = _render_request(params, fmt)
    except BadRequest as error:
        return text_response(400, str(error))
    instance = instances.get()
    journal(request, Action.VIEW, study, "wado-uri image", f"instance {uids[2]}")
    try:
        data = rendering.render(instance, wanted)
    except rendering.RenderError as error:
        return text_response(422, str(error))
    response = HttpResponse(data, content_type=rendering.content_type(wanted))
    response["Cache-Control"] = "private, max-age=600"
    return response


def _dicom(request, uids: list[str], syntax: str):
    study, instances = reach(request, *uids, action=Action.DOWNLOAD)  # hidden: 404 before 403
    require(request, Privilege.DOWNLOAD, Action.DOWNLOAD, "wado-uri object", uids[0])
    instance = instances.get()
    try:
        if syntax != part10.ANY:
            check_uid(syntax, "transferSyntax")
        chunks = part10.instance_chunks(instance, syntax)
    except BadRequest as error:
        return text_response(400, str(error))
    except part10.NotAvailable as error:
        return text_response(406, str(error))
    journal(request, Action.DOWNLOAD, study, "wado-uri object", f"instance {uids[2]}")
    response = StreamingHttpResponse(chunks, content_type="application/dicom")
    response["Content-Disposition"] = 'attachment; filename="object.dcm"'
    return response
