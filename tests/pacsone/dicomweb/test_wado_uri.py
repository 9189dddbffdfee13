"""WADO-URI at /wado: a rendered image by default, the DICOM object with Download; the same
access rule (a hidden study is a 404) and journal."""

import io

import pytest
from PIL import Image
from pydicom import dcmread

from audit.models import Action, Entry
from tests.people import make_user

from .conftest import CT_SERIES, CT_STUDY

pytestmark = pytest.mark.django_db

OBJECT = {"requestType": "WADO", "studyUID": CT_STUDY, "seriesUID": CT_SERIES, "objectUID": f"{CT_SERIES}.1"}


def test_a_jpeg_by_default_and_png_on_request(client, world, ct_study):
    client.force_login(world.users["physician"])
    jpeg = client.get("/wado", OBJECT)
    assert jpeg.status_code == 200 and Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    png = client.get("/wado", {**OBJECT, "contentType": "image/png", "rows": "16", "windowCenter": "40",
                               "windowWidth": "400"})
    assert Image.open(io.BytesIO(png.content)).size == (16, 16)


def test_the_dicom_object_needs_download(client, world, ct_study):
    client.force_login(world.users["physician"])
    assert client.get("/wado", {**OBJECT, "contentType": "application/dicom"}).status_code == 403
    client.force_login(make_user("dl", ["download"]))
    before = Entry.objects.order_by("-id").first().pk
    response = client.get("/wado", {**OBJECT, "contentType": "application/dicom"})
    assert response.status_code == 200
    ds = dcmread(io.BytesIO(b"".join(response.streaming_content)))
    assert ds.SOPInstanceUID == f"{CT_SERIES}.1"
    assert Entry.objects.filter(id__gt=before, action=Action.DOWNLOAD, study_uid=CT_STUDY).count() == 1


def test_a_hidden_object_is_404(client, world):
    from pacsone.models import Instance

    instance = Instance.objects.select_related("series__study").get(series__study=world.studies["other"])
    client.force_login(world.users["physician"])
    response = client.get("/wado", {"requestType": "WADO", "studyUID": world.studies["other"].study_instance_uid,
                                    "seriesUID": instance.series.series_instance_uid,
                                    "objectUID": instance.sop_instance_uid})
    assert response.status_code == 404


@pytest.mark.parametrize("change", [{"requestType": "WADX"}, {"objectUID": ""}, {"studyUID": "1.2.x"},
                                    {"frameNumber": "0"}, {"rows": "big"}])
def test_bad_requests_are_400(client, world, ct_study, change):
    client.force_login(world.users["root"])
    assert client.get("/wado", {**OBJECT, **change}).status_code == 400


def test_an_unknown_content_type_is_406(client, world, ct_study):
    client.force_login(world.users["root"])
    assert client.get("/wado", {**OBJECT, "contentType": "video/mpeg"}).status_code == 406
