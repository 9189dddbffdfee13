"""Export to DICOM media: a DICOMDIR that pydicom and dcmtk read, zipped, with an HTML index;
run as a job with its progress."""

import subprocess
import zipfile
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from pydicom import dcmread
from pydicom.fileset import FileSet

from pacsone.models import Study
from routing.jobs import start_job
from routing.models import Job
from tests.helpers import dcmtk_program, make_file, pydicom_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


def import_folder(folder):
    call_command("importdicom", str(folder), "--no-progress", stdout=StringIO())


@pytest.fixture
def archive(tmp_path):
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    for i in range(3):
        make_file(tmp_path / "in", f"{i}.dcm", study_uid=study_uid, patient_id="EXP1", patient_name="EXPORT^ME",
                  InstanceNumber=i + 1)
    (tmp_path / "in" / "rle.dcm").write_bytes(pydicom_file("MR_small_RLE.dcm").read_bytes())
    import_folder(tmp_path / "in")
    return list(Study.objects.values_list("pk", flat=True))


def run_export(study_pks, zipped=True):
    owner = make_user("exporter", ["export"])
    job = start_job(Job.Kind.EXPORT, "test export", owner, "pacsone.export.export_studies", study_pks, zipped)
    return Job.objects.get(pk=job.pk)


def test_export_writes_a_zipped_dicomdir_with_an_index(archive, tmp_path):
    job = run_export(archive)
    assert job.state == Job.State.DONE, job.message
    assert (job.done, job.total, job.failed) == (5, 5, 0)
    assert "StudyID" in job.message  # our synthetic files lack it: filled on the copies
    path = settings.DATA_DIR / job.result_path
    assert path.suffix == ".zip"
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "media")
    fileset = FileSet(dcmread(tmp_path / "media" / "DICOMDIR"))
    assert len(fileset) == 4
    assert {p.PatientID for p in fileset.find(PatientID="EXP1", load=True)} == {"EXP1"}
    index = (tmp_path / "media" / "index.html").read_text()
    assert "EXPORT, Me" in index and "class='stack'" in index  # names as people write them (humanize)
    previews = list((tmp_path / "media" / "VIEWER").rglob("*.JPG"))
    assert len(previews) == 4 and all(p.read_bytes()[:2] == b"\xff\xd8" for p in previews)


@pytest.mark.peers
def test_dcmtk_reads_the_exported_dicomdir(archive, tmp_path):
    dcmdump = dcmtk_program("dcmdump")
    job = run_export(archive, zipped=False)
    folder = settings.DATA_DIR / job.result_path
    result = subprocess.run([dcmdump, str(folder / "DICOMDIR")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "DirectoryRecordType" in result.stdout and "PATIENT" in result.stdout and "EXP1" in result.stdout


def test_a_missing_file_fails_that_instance_not_the_export(archive):
    from pacsone import storage
    from pacsone.models import Instance

    lost = Instance.objects.first()
    storage.absolute_path(lost.storage_location, lost.file_path).unlink()
    job = run_export(archive)
    assert job.state == Job.State.DONE and job.failed == 1
    assert "could not be exported" in job.message


def test_export_page_action_needs_the_privilege_and_visibility(client, archive):
    uid = Study.objects.get(pk=archive[0]).study_instance_uid
    client.force_login(make_user("nobody", ["view"]))
    assert client.post("/export/", {"study": uid}).status_code == 403
    client.force_login(make_user("blind", ["export"]))  # may export, may not see the private study
    response = client.post("/export/", {"study": uid})
    assert response.status_code == 302 and not Job.objects.exists()
    assert "Choose one or more studies you may see" in str(list(response.wsgi_request._messages))
    client.force_login(make_user("both", ["export", "view"]))
    response = client.post("/export/", {"study": uid})
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/" and job.state == Job.State.DONE
    page = client.get(f"/jobs/{job.pk}/")
    assert b"Download the result" in page.content
    download = client.get(f"/jobs/{job.pk}/result")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")


def test_jobs_are_seen_by_their_owner_and_system_administrators_only(client, archive):
    job = run_export(archive)
    for user, expected in ((make_user("stranger", ["view", "export"]), 404),
                           (make_user("admin", ["system_admin"]), 200)):
        client.force_login(user)
        assert client.get(f"/jobs/{job.pk}/").status_code == expected
        assert client.get(f"/jobs/{job.pk}/status.json").status_code == expected
        # The result (the export ZIP) is its owner's alone, whoever may list the job.
        assert client.get(f"/jobs/{job.pk}/result").status_code == 404
        listing = client.get("/jobs/")
        assert (b"test export" in listing.content) == (expected == 200)


def test_a_refused_export_does_not_redirect_off_site(client, archive):
    client.force_login(make_user("blind", ["export"]))
    response = client.post("/export/", {"study": "9.9.9", "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
