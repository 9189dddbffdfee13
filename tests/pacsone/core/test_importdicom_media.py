"""`importdicom` of DICOM media: a DICOMDIR, a folder holding one, a ZIP of a CD; made by
pydicom's FileSet, by dcmtk's dcmmkdir and by our own export."""

import subprocess
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from pacsone import storage
from pacsone.models import Instance, Study
from routing.jobs import start_job
from routing.models import Job
from tests.helpers import dataset_bytes, dcmtk_program, make_dataset, make_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


def importdicom(*paths) -> str:
    out = StringIO()
    call_command("importdicom", *map(str, paths), "--no-progress", stdout=out)
    return out.getvalue()


def make_media(folder: Path, count: int = 3) -> list[str]:
    """A CD as pydicom's FileSet writes one: DICOMDIR, files named PT000000/ST000000/SE000000/
    IM000000 (upper case, no extension), and a viewer beside them. The SOP Instance UIDs."""
    fileset = FileSet()
    study_uid, series_uid = generate_uid(), generate_uid()
    uids = []
    for number in range(count):
        ds = make_dataset(study_uid=study_uid, series_uid=series_uid, patient_id="CD1", InstanceNumber=number + 1,
                          StudyID="1", SeriesNumber=1)
        fileset.add(ds)
        uids.append(ds.SOPInstanceUID)
    fileset.write(folder)
    (folder / "VIEWER.EXE").write_bytes(b"MZ not an image")
    (folder / "AUTORUN.INF").write_text("[autorun]\nopen=VIEWER.EXE\n")
    return uids


def media_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("IM*") if p.is_file()]


def stored_uids() -> set[str]:
    return set(Instance.objects.values_list("sop_instance_uid", flat=True))


def test_it_imports_every_file_a_dicomdir_references(tmp_path):
    uids = make_media(tmp_path / "cd")
    assert all("." not in p.name for p in media_files(tmp_path / "cd"))  # media file IDs: no extension

    out = importdicom(tmp_path / "cd" / "DICOMDIR")

    assert "Imported 3 files: 3 stored, 0 replaced, 0 skipped as duplicates, 0 skipped as not DICOM" in out
    assert stored_uids() == set(uids)


def test_a_folder_holding_a_dicomdir_imports_what_it_lists_and_leaves_the_viewer_alone(tmp_path):
    uids = make_media(tmp_path / "upload" / "cd")
    make_file(tmp_path / "upload" / "loose", "other.dcm", sop_uid="1.2.826.0.1.3680043.99.1")

    out = importdicom(tmp_path / "upload")

    assert "Imported 4 files: 4 stored, 0 replaced, 0 skipped as duplicates, 0 skipped as not DICOM" in out
    assert stored_uids() == {*uids, "1.2.826.0.1.3680043.99.1"}


def test_a_zip_of_a_cd_imports_what_its_dicomdir_lists(tmp_path):
    uids = make_media(tmp_path / "cd")
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((tmp_path / "cd").rglob("*")):
            if path.is_file():
                z.write(path, "PATIENT_CD/" + path.relative_to(tmp_path / "cd").as_posix())
        z.write(make_file(tmp_path / "extra", "x.dcm", sop_uid="1.2.826.0.1.3680043.99.2"), "extra/x.dcm")

    out = importdicom(archive)

    assert "Imported 4 files: 4 stored, 0 replaced, 0 skipped as duplicates, 0 skipped as not DICOM" in out
    assert stored_uids() == {*uids, "1.2.826.0.1.3680043.99.2"}


def test_file_ids_match_the_lower_case_names_of_a_cd_mounted_on_linux(tmp_path):
    uids = make_media(tmp_path / "cd")
    for path in sorted((tmp_path / "cd").rglob("*"), key=lambda p: -len(p.parts)):  # deepest first
        path.rename(path.with_name(path.name.lower() + (";1" if path.is_file() else "")))

    out = importdicom(tmp_path / "cd")

    assert "3 stored" in out and stored_uids() == set(uids)


def test_a_referenced_file_missing_from_the_media_is_reported_and_the_rest_imported(tmp_path):
    uids = make_media(tmp_path / "cd")
    lost = sorted(media_files(tmp_path / "cd"))[0]
    lost_uid = dcmread(lost).SOPInstanceUID
    lost.unlink()

    out = importdicom(tmp_path / "cd")

    assert "2 stored" in out and "1 listed in a DICOMDIR but missing from the media" in out
    assert f"{lost.relative_to(tmp_path / 'cd').as_posix()}: referenced by the DICOMDIR but not on the media" in out
    assert stored_uids() == set(uids) - {lost_uid}


def test_it_exits_non_zero_when_nothing_could_be_imported(tmp_path):
    make_media(tmp_path / "cd")
    for path in media_files(tmp_path / "cd"):
        path.unlink()

    with pytest.raises(CommandError, match="nothing could be imported"):
        importdicom(tmp_path / "cd" / "DICOMDIR")
    assert not Instance.objects.exists()


def test_an_unreadable_dicomdir_is_reported_and_its_folder_imported_file_by_file(tmp_path):
    make_file(tmp_path / "cd" / "DICOM", "IM1", sop_uid="1.2.826.0.1.3680043.99.3")
    (tmp_path / "cd" / "DICOMDIR").write_bytes(b"not a DICOMDIR")

    out = importdicom(tmp_path / "cd")

    assert "1 stored" in out and "unreadable DICOMDIR" in out
    assert stored_uids() == {"1.2.826.0.1.3680043.99.3"}


@pytest.mark.peers
def test_a_dicomdir_made_by_dcmmkdir_round_trips(tmp_path):
    dcmmkdir = dcmtk_program("dcmmkdir")
    cd = tmp_path / "cd"
    study_uid, series_uid = generate_uid(), generate_uid()
    sources = [make_file(cd / "DICOM" / "ST000001", f"IM{n:06d}", study_uid=study_uid, series_uid=series_uid,
                         InstanceNumber=n, StudyID="1", SeriesNumber=1) for n in range(1, 5)]
    result = subprocess.run([dcmmkdir, "+r", "+id", str(cd), "DICOM"], cwd=cd, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and (cd / "DICOMDIR").exists(), result.stderr

    out = importdicom(cd / "DICOMDIR")

    assert "Imported 4 files: 4 stored" in out
    for source in sources:
        instance = Instance.objects.get(sop_instance_uid=dcmread(source).SOPInstanceUID)
        stored = storage.absolute_path(instance.storage_location, instance.file_path)
        assert dataset_bytes(stored) == dataset_bytes(source)


def test_a_dicomdir_exported_by_us_round_trips(tmp_path):
    study_uid = generate_uid()
    for number in range(3):
        make_file(tmp_path / "in", f"{number}.dcm", study_uid=study_uid, patient_id="RT1", InstanceNumber=number + 1)
    importdicom(tmp_path / "in")
    uids = stored_uids()
    owner = make_user("exporter", ["export"])
    job = start_job(Job.Kind.EXPORT, "export", owner, "pacsone.export.export_studies",
                    list(Study.objects.values_list("pk", flat=True)), True)
    exported = settings.DATA_DIR / Job.objects.get(pk=job.pk).result_path
    Study.objects.all().delete()

    out = importdicom(exported)

    assert "Imported 3 files: 3 stored" in out  # the HTML index and JPEG previews are left alone
    assert stored_uids() == uids and Study.objects.get().patient.patient_id == "RT1"


def test_the_web_import_reads_a_dicomdir_and_names_what_is_missing(client, tmp_path, settings):
    settings.PACS_IMPORT_ROOTS = [tmp_path.resolve()]  # the web Import reads only below its roots
    uids = make_media(tmp_path / "cd")
    lost = sorted(media_files(tmp_path / "cd"))[0]
    lost.unlink()
    client.force_login(make_user("imp", ["import"]))

    client.post("/import/", {"path": str(tmp_path / "cd")})

    job = Job.objects.get()
    assert job.state == Job.State.DONE
    assert "2 stored" in job.message and "1 listed in a DICOMDIR but missing" in job.message
    assert "referenced by the DICOMDIR but not on the media" in job.message
    assert len(stored_uids() & set(uids)) == 2
