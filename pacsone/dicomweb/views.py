"""The DICOMweb endpoints: each authenticates (auth.py), checks its method, and hands over to
qido, wado, stow or wado_uri. A malformed UID or parameter is a 400 with the reason."""

import functools

from django.http import HttpResponseNotAllowed

from ..dicom.query import IMAGE, SERIES, STUDY
from . import qido, stow, wado, wado_uri
from .auth import dicomweb_view
from .dicom_json import BadRequest, check_uid, text_response


def endpoint(*methods: str):
    def decorator(view):
        @dicomweb_view
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
                return HttpResponseNotAllowed(methods)
            try:
                return view(request, *args, **kwargs)
            except BadRequest as error:
                return text_response(400, str(error))

        return wrapper

    return decorator


def _uids(**named) -> dict[str, str]:
    keywords = {"study_uid": "StudyInstanceUID", "series_uid": "SeriesInstanceUID"}
    return {keywords[name]: check_uid(uid, keywords[name]) for name, uid in named.items()}


@endpoint("GET", "POST")
def studies(request):
    if request.method == "POST":
        return stow.store(request)
    return qido.search(request, STUDY, {})


@endpoint("GET", "POST")
def study(request, study_uid):
    if request.method == "POST":
        return stow.store(request, check_uid(study_uid, "StudyInstanceUID"))
    return wado.retrieve(request, study_uid)


@endpoint("GET")
def all_series(request):
    return qido.search(request, SERIES, {})


@endpoint("GET")
def all_instances(request):
    return qido.search(request, IMAGE, {})


@endpoint("GET")
def study_series(request, study_uid):
    return qido.search(request, SERIES, _uids(study_uid=study_uid))


@endpoint("GET")
def study_instances(request, study_uid):
    return qido.search(request, IMAGE, _uids(study_uid=study_uid))


@endpoint("GET")
def series_instances(request, study_uid, series_uid):
    return qido.search(request, IMAGE, _uids(study_uid=study_uid, series_uid=series_uid))


@endpoint("GET")
def series(request, study_uid, series_uid):
    return wado.retrieve(request, study_uid, series_uid)


@endpoint("GET")
def instance(request, study_uid, series_uid, sop_uid):
    return wado.retrieve(request, study_uid, series_uid, sop_uid)


@endpoint("GET")
def metadata(request, study_uid, series_uid=None, sop_uid=None):
    return wado.metadata(request, study_uid, series_uid, sop_uid)


@endpoint("GET")
def bulkdata(request, study_uid, series_uid, sop_uid, tag_path):
    return wado.bulkdata(request, study_uid, series_uid, sop_uid, tag_path)


@endpoint("GET")
def frames(request, study_uid, series_uid, sop_uid, frame_list):
    return wado.frames(request, study_uid, series_uid, sop_uid, frame_list)


@endpoint("GET")
def rendered(request, study_uid, series_uid, sop_uid, frame_list=None):
    return wado.rendered(request, study_uid, series_uid, sop_uid, frame_list)


@endpoint("GET")
def thumbnail(request, study_uid, series_uid=None, sop_uid=None):
    return wado.rendered(request, study_uid, series_uid, sop_uid, thumbnail=True)


@endpoint("GET")
def wado_object(request):
    return wado_uri.wado(request)
