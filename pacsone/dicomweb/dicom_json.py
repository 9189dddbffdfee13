"""Small helpers for DICOM JSON (PS3.18 Annex F) answers and request values."""

import re

from django.http import HttpResponse, JsonResponse
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import Tag

DICOM_JSON = "application/dicom+json"
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
RETRIEVE_URL = "00081190"


class BadRequest(ValueError):
    """A request we refuse with 400 and this reason."""


def text_response(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def json_response(data, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, content_type=DICOM_JSON,
                        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")})


def check_uid(uid: str, what: str = "UID") -> str:
    """A UID from a URL: digits and dots, at most 64 characters; anything else is a 400."""
    if len(uid) > 64 or not UID_RE.match(uid):
        raise BadRequest(f"{what} {uid[:80]!r} is not a valid UID")
    return uid


def attribute_tag(name: str) -> Tag:
    """A QIDO attribute: a keyword (PatientName) or a tag as eight hex digits (00100010)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return Tag(int(name, 16))
    tag = tag_for_keyword(name)
    if tag is None:
        raise BadRequest(f"{name[:80]!r} is neither a DICOM keyword nor a tag (ggggeeee)")
    return Tag(tag)


def vr_of(tag: Tag) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise BadRequest(f"({tag.group:04X},{tag.element:04X}) is not in the DICOM dictionary") from None
    return vr.split(" or ")[0]


def wants(request, *media_types: str) -> bool:
    """Does the Accept header allow one of `media_types` (no header, or */*, allows anything)?"""
    accept = request.META.get("HTTP_ACCEPT", "").strip()
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("*/*", "application/*") or media in media_types:
            return True
    return False


def absolute_url(request, path: str) -> str:
    """`path` as an absolute URL for answers (RetrieveURL, BulkDataURI). Some clients
    (dicomweb-client) send a Host header without the port they connected to; when no proxy
    header says otherwise, the port the server listens on is added back, so that the URL
    leads where the request came."""
    url = request.build_absolute_uri(path)
    host = request.META.get("HTTP_HOST", "")
    port = request.META.get("SERVER_PORT", "")
    proxied = any(name in request.META for name in ("HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
                                                    "HTTP_FORWARDED"))
    if host and ":" not in host.rsplit("]", 1)[-1] and port not in ("", "80", "443") and not proxied:
        scheme = request.scheme
        return url.replace(f"{scheme}://{host}", f"{scheme}://{host}:{port}", 1)
    return url
