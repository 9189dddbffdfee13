"""STOW-RS through the one ingest path: good and bad parts in one request (200/202/409 as PS3.18
says, a Failure Reason for each bad part), the privileges (Upload or Import), the rule that a
person cannot add to studies they may not see, bounded and malformed bodies."""

import pytest
from django.test import override_settings
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from audit.models import Action, Entry, Outcome
from pacsone.models import Instance, Study
from tests.helpers import make_dataset, stored_files
from tests.people import make_user

from .conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

BOUNDARY = "stowtestboundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
REFERENCED, FAILED = "00081199", "00081198"


def part10(ds: Dataset) -> bytes:
    from io import BytesIO

    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def body(*parts: bytes, content_type: str = "application/dicom") -> bytes:
    chunks = [f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + part + b"\r\n" for part in parts]
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def post(client, data: bytes, path="/dicomweb/studies", content_type=CONTENT_TYPE):
    return client.generic("POST", path, data, content_type=content_type)


@pytest.fixture
def uploader(world):
    return make_user("up", ["upload"], first_name="Uma", last_name="Loader")


def test_a_real_client_stores_instances_and_gets_their_urls(live_server, world, uploader):
    study = generate_uid()
    datasets = [make_dataset(study_uid=study, patient_id="STOW1", InstanceNumber=n) for n in (1, 2)]
    answer = client_for(live_server, world.users["root"]).store_instances(datasets)
    referenced = answer.ReferencedSOPSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {ds.SOPInstanceUID for ds in datasets}
    assert all(f"/dicomweb/studies/{study}/series/" in item.RetrieveURL for item in referenced)
    assert Instance.objects.filter(series__study__study_instance_uid=study).count() == 2
    stored = Entry.objects.filter(study_uid=study, action=Action.IMPORT)
    assert stored.count() == 1 and "2 instances via stow" in stored.get().target  # once per study


def test_one_good_and_one_bad_part_is_202_with_the_reason(client, world, uploader):
    client.force_login(uploader)
    good = make_dataset(patient_id="STOW2")
    bad = make_dataset(patient_id="STOW2")
    bad.SOPInstanceUID = "not-a-uid"
    bad.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    response = post(client, body(part10(good), part10(bad)))
    assert response.status_code == 202, response.content
    answer = response.json()
    assert [i["00081155"]["Value"][0] for i in answer[REFERENCED]["Value"]] == [good.SOPInstanceUID]
    [failed] = answer[FAILED]["Value"]
    assert failed["00081197"]["Value"] == [0xC000] and failed["00081155"]["Value"] == ["not-a-uid"]
    assert "part 2" in response["Warning"]
    assert Instance.objects.filter(sop_instance_uid=good.SOPInstanceUID).exists()
    assert Instance.objects.count() == 4  # the world's three and the good one


def test_only_bad_parts_is_409_and_nothing_is_stored(client, world, uploader):
    client.force_login(uploader)
    files_before = len(stored_files())
    response = post(client, body(b"this is not DICOM", b"\0" * 300))
    assert response.status_code == 409
    assert len(response.json()[FAILED]["Value"]) == 2
    assert len(stored_files()) == files_before and Instance.objects.count() == 3


def test_a_part_of_another_type_fails_alone(client, world, uploader):
    client.force_login(uploader)
    response = post(client, body(b"{}", content_type="application/json"))
    assert response.status_code == 409 and "application/json" in response["Warning"]


def test_storing_to_a_study_refuses_instances_of_another(client, world, uploader):
    client.force_login(uploader)
    target = generate_uid()
    inside, outside = make_dataset(study_uid=target, patient_id="S3"), make_dataset(patient_id="S3")
    response = post(client, body(part10(inside), part10(outside)), path=f"/dicomweb/studies/{target}")
    assert response.status_code == 202
    assert response.json()["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{target}")
    assert not Instance.objects.filter(sop_instance_uid=outside.SOPInstanceUID).exists()


@pytest.mark.parametrize("role", ["physician", "power", "sysadmin"])
def test_store_needs_upload_or_import(client, world, role):
    client.force_login(world.users[role])
    before = Entry.objects.order_by("-id").first().pk
    response = post(client, body(part10(make_dataset())))
    assert response.status_code == 403
    assert Entry.objects.filter(id__gt=before, outcome=Outcome.DENIED).count() == 1
    assert Instance.objects.count() == 3


def test_import_privilege_is_enough(client, world):
    client.force_login(make_user("imp", ["import"]))
    assert post(client, body(part10(make_dataset(patient_id="IMP1")))).status_code == 200


def test_an_uploader_cannot_add_to_a_study_they_may_not_see(client, world, uploader):
    client.force_login(uploader)
    other = world.studies["other"]
    intruder = make_dataset(study_uid=other.study_instance_uid, patient_id=other.patient.patient_id)
    response = post(client, body(part10(intruder)))
    assert response.status_code == 409
    assert response.json()[FAILED]["Value"][0]["00081197"]["Value"] == [0x0124]
    assert "OTHER^PAT" not in response.content.decode() and "OTH1" not in response["Warning"]
    assert Study.objects.get(pk=other.pk).number_of_instances == 1
    assert Entry.objects.filter(action=Action.UPLOAD, outcome=Outcome.DENIED, study_uid=other.study_instance_uid).exists()


@pytest.mark.parametrize("data, content_type, status", [
    (b"garbage", CONTENT_TYPE, 400),
    (b"--stowtestboundary\r\nContent-Type: application/dicom\r\n\r\nunclosed", CONTENT_TYPE, 400),
    (b"--stowtestboundary--\r\n", CONTENT_TYPE, 400),
    (b"\r\n", CONTENT_TYPE, 400),
    (body(b"x"), 'multipart/related; type="application/dicom"', 400),  # no boundary
    (body(b"x"), "application/dicom", 415),
    (body(b"x"), f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}', 415),
])
def test_malformed_requests_get_a_clear_error(client, world, uploader, data, content_type, status):
    client.force_login(uploader)
    response = post(client, data, content_type=content_type)
    assert response.status_code == status, response.content
    assert Instance.objects.count() == 3


@override_settings(PACS_UPLOAD_MAX_MB=1)
def test_a_body_over_the_limit_is_413_before_it_is_read(client, world, uploader):
    client.force_login(uploader)
    response = post(client, body(b"\0" * (1024 * 1024 + 10)))
    assert response.status_code == 413
    assert Entry.objects.filter(action=Action.UPLOAD, outcome=Outcome.FAILURE, detail="too large").exists()
