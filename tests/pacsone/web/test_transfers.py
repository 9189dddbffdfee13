"""Download a study as ZIP, upload files or a ZIP, import from a server folder: privileges,
visibility, bad input, and everything through the one ingest path."""

import io
import json
import zipfile
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from pydicom import dcmread
from pydicom.uid import generate_uid

from audit.models import Entry
from pacsone.models import Instance, Study
from routing.models import Job
from tests.helpers import make_dataset, make_file, pydicom_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(tmp_path):
    uid = generate_uid()
    for i in range(3):
        make_file(tmp_path / "in", f"{i}.dcm", study_uid=uid, patient_id="DL1", InstanceNumber=i + 1, SeriesNumber=2)
    call_command("importdicom", str(tmp_path / "in"), "--no-progress", stdout=StringIO())
    return Study.objects.get(study_instance_uid=uid)


def dicom_bytes(**kwargs) -> bytes:
    buffer = io.BytesIO()
    make_dataset(**kwargs).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("privileges,expected", [(["view"], 403), (["download"], 404), (["view", "download"], 200)])
def test_download_needs_the_privilege_and_sight_of_the_study(client, study, privileges, expected):
    client.force_login(make_user("u", privileges))
    response = client.get(f"/download/{study.study_instance_uid}.zip")
    assert response.status_code == expected
    if expected == 200:
        data = b"".join(response.streaming_content)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            assert len(names) == 3 and all(n.endswith(".dcm") and "DL1" not in n for n in names)
            first = dcmread(io.BytesIO(archive.read(names[0])))
            assert first.StudyInstanceUID == study.study_instance_uid
        assert Entry.objects.filter(action="download", study_uid=study.study_instance_uid).exists()


def test_upload_files_and_a_zip(client):
    client.force_login(make_user("up", ["upload"]))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a/1.dcm", dicom_bytes(patient_id="UPZ"))
        archive.writestr("a/readme.txt", b"hello")
    files = [
        SimpleUploadedFile("one.dcm", dicom_bytes(patient_id="UP1")),
        SimpleUploadedFile("../../evil name.dcm", dicom_bytes(patient_id="UP2")),
        SimpleUploadedFile("batch.zip", zipped.getvalue()),
    ]
    response = client.post("/upload/", {"files": files})
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"])
    assert job.state == Job.State.DONE, job.message
    assert (job.done, job.total, job.failed) == (4, 4, 1)
    assert "3 stored" in job.message and "1 not DICOM" in job.message
    assert set(Study.objects.values_list("patient__patient_id", flat=True)) == {"UP1", "UP2", "UPZ"}
    assert Entry.objects.filter(action="upload", username="up").exists()


def test_an_upload_names_each_refused_file_and_why_and_stores_the_rest(client):
    client.force_login(make_user("up", ["upload", "view"]))
    whole = dicom_bytes(patient_id="GOOD")
    mismatch = make_dataset(patient_id="BAD")
    mismatch.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.99.9"
    mismatch.preamble = b"\0" * 128
    mismatch_bytes = io.BytesIO()
    mismatch.save_as(mismatch_bytes, enforce_file_format=False)
    files = [
        SimpleUploadedFile("good.dcm", whole),
        SimpleUploadedFile("cut.dcm", dicom_bytes(patient_id="CUT")[:-600]),
        SimpleUploadedFile("mismatch.dcm", mismatch_bytes.getvalue()),
    ]

    response = client.post("/upload/", {"files": files})

    job = Job.objects.get(pk=response.json()["job"])
    assert "1 stored" in job.message and "1 not DICOM" in job.message and "1 rejected" in job.message
    assert "cut.dcm: unreadable: truncated data set: (7FE0,0010) runs 600 bytes past the end" in job.message
    assert "mismatch.dcm: invalid: SOPInstanceUID differs from the file meta" in job.message
    assert set(Study.objects.values_list("patient__patient_id", flat=True)) == {"GOOD"}
    # The upload page's results: one per file, under the user's names, the stored one linked.
    status = client.get(response.json()["status"]).json()
    assert status["state"] == "done"
    by_name = {result["name"]: result for result in status["results"]}
    assert set(by_name) == {"good.dcm", "cut.dcm", "mismatch.dcm"}
    study = Study.objects.get()
    assert by_name["good.dcm"]["accepted"] and by_name["good.dcm"]["study_url"] == f"/studies/{study.study_instance_uid}/"
    assert by_name["good.dcm"]["study"].startswith("DOE, John")
    assert by_name["cut.dcm"]["outcome"] == "unreadable" and "study_url" not in by_name["cut.dcm"]
    assert "/uploads/" not in json.dumps(status) and ".upload" not in json.dumps(status)


def test_an_uploaded_zip_of_a_cd_imports_what_its_dicomdir_lists(client, tmp_path):
    from pydicom.fileset import FileSet

    fileset = FileSet()
    for number in range(2):
        fileset.add(make_dataset(patient_id="CDZ", InstanceNumber=number + 1, StudyID="1", SeriesNumber=1))
    fileset.write(tmp_path / "cd")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted((tmp_path / "cd").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(tmp_path / "cd").as_posix())
        archive.writestr("viewer/README.TXT", b"not listed in the DICOMDIR: left alone")
    client.force_login(make_user("up", ["upload"]))

    response = client.post("/upload/", {"files": [SimpleUploadedFile("cd.zip", zipped.getvalue())]})

    job = Job.objects.get(pk=response.json()["job"])
    assert job.message.startswith("2 files: 2 stored"), job.message
    assert Instance.objects.filter(series__study__patient__patient_id="CDZ").count() == 2


def test_a_non_dicom_upload_stores_nothing_and_says_so(client):
    client.force_login(make_user("up", ["upload"]))
    response = client.post("/upload/", {"files": [SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0 not dicom")]})
    job = Job.objects.get(pk=response.json()["job"])
    assert job.failed == 1 and "1 not DICOM" in job.message
    assert not Instance.objects.exists()


def test_an_oversized_upload_is_refused_before_reading(client, settings):
    settings.PACS_UPLOAD_MAX_MB = 1
    client.force_login(make_user("up", ["upload"]))
    big = SimpleUploadedFile("big.dcm", b"\0" * (1024 * 1024 + 10))
    response = client.post("/upload/", {"files": [big]})
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["error"]
    assert not Job.objects.exists() and not Instance.objects.exists()


def test_upload_without_files_or_privilege(client):
    client.force_login(make_user("noup", ["view"]))
    assert client.get("/upload/").status_code == 403
    client.force_login(make_user("up", ["upload"]))
    assert client.get("/upload/").status_code == 200
    assert client.post("/upload/", {}).status_code == 400


def test_import_from_a_server_folder(client, tmp_path, settings):
    settings.PACS_IMPORT_ROOTS = [tmp_path.resolve()]
    media = tmp_path / "cdrom"
    make_file(media / "DICOM", "IM1", patient_id="CD1")
    (media / "DICOMDIR").write_bytes(b"not read: the files are walked")
    (media / "RLE").write_bytes(pydicom_file("MR_small_RLE.dcm").read_bytes())
    client.force_login(make_user("imp", ["import"]))
    response = client.post("/import/", {"path": str(media)})
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.state == Job.State.DONE and "2 stored" in job.message
    assert Entry.objects.filter(action="import", username="imp").exists()


@pytest.mark.parametrize("path", ["", "relative/dir", "/no/such/folder"])
def test_import_bad_paths(client, path):
    client.force_login(make_user("imp", ["import"]))
    response = client.post("/import/", {"path": path})
    assert response.status_code == 200 and b"is not a folder, DICOMDIR or ZIP file in the import folders" in response.content
    assert not Job.objects.exists()
