"""The ops commands as an administrator runs them: importdicom, archivestats, verifystorage."""

import json
import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pacsone import storage
from pacsone.models import Instance, Study
from tests.helpers import make_file, pydicom_file

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, "--no-progress" if args[0] != "archivestats" else "--json", stdout=out)
    return out.getvalue()


def test_importdicom_walks_folders_and_zips_and_reports_each_outcome(tmp_path):
    folder = tmp_path / "cd"
    make_file(folder / "sub", "a.dcm", study_uid="1.2.3")
    make_file(folder, "b.dcm", study_uid="1.2.3")
    (folder / "README.TXT").write_text("viewer instructions")
    (folder / "DICOMDIR").write_bytes(b"index, not an image")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(make_file(tmp_path / "z", "c.dcm"), "../../evil/c.dcm")
        z.write(pydicom_file("MR_small_RLE.dcm"), "rle.dcm")
    out = StringIO()

    call_command("importdicom", str(folder), str(archive), "--no-progress", stdout=out)

    assert "Imported 5 files: 4 stored, 0 replaced, 0 skipped as duplicates, 1 skipped as not DICOM" in out.getvalue()
    assert Instance.objects.count() == 4
    assert Study.objects.get(study_instance_uid="1.2.3").number_of_instances == 2
    assert not (tmp_path / "evil").exists()


def test_importdicom_twice_skips_duplicates(tmp_path):
    make_file(tmp_path / "in", "a.dcm")
    call_command("importdicom", str(tmp_path / "in"), "--no-progress", stdout=StringIO())
    out = StringIO()
    call_command("importdicom", str(tmp_path / "in"), "--no-progress", stdout=out)
    assert "0 stored, 0 replaced, 1 skipped as duplicates" in out.getvalue()


def test_importdicom_refuses_a_missing_path(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        call_command("importdicom", str(tmp_path / "nowhere"), stdout=StringIO())


def test_archivestats_json_counts_everything(tmp_path):
    make_file(tmp_path, "a.dcm", study_uid="1.2.3", series_uid="1.2.3.1")
    make_file(tmp_path, "b.dcm", study_uid="1.2.3", series_uid="1.2.3.2", patient_id="P2")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    out = StringIO()

    call_command("archivestats", "--json", stdout=out)

    stats = json.loads(out.getvalue())
    assert {k: stats[k] for k in ("patients", "studies", "series", "instances")} == {
        "patients": 1, "studies": 1, "series": 2, "instances": 2,
    }
    assert stats["bytes"] == sum(i.file_size for i in Instance.objects.all())


def test_archivestats_prints_a_table():
    out = StringIO()
    call_command("archivestats", stdout=out)
    assert "instances" in out.getvalue()


def test_verifystorage_passes_on_an_intact_archive(tmp_path):
    make_file(tmp_path, "a.dcm")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    out = StringIO()
    call_command("verifystorage", "--no-progress", stdout=out)
    assert "All 1 indexed file are present and intact." in out.getvalue()


def test_verifystorage_finds_missing_and_damaged_files(tmp_path, capsys):
    make_file(tmp_path, "a.dcm")
    make_file(tmp_path, "b.dcm")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    damaged, missing = Instance.objects.order_by("pk")
    damaged_path = storage.absolute_path(damaged.storage_location, damaged.file_path)
    damaged_path.write_bytes(damaged_path.read_bytes()[:-1] + b"X")
    storage.absolute_path(missing.storage_location, missing.file_path).unlink()

    with pytest.raises(CommandError, match="2 problems among 2 indexed files"):
        call_command("verifystorage", "--no-progress", stdout=StringIO())

    printed = capsys.readouterr().out
    assert f"checksum differs: {damaged.storage_location.name}:{damaged.file_path}" in printed
    assert "missing: " in printed and missing.sop_instance_uid in printed
