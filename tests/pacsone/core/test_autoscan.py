"""Auto-scan import: what lands in the folder is imported once and moved aside; failures are
reported and not retried forever."""

import os
import time
import zipfile
from unittest import mock

import pytest
from django.core.management import call_command
from pydicom.uid import generate_uid

from audit.models import Entry
from pacsone import autoscan
from pacsone.ingest import IngestResult, Outcome
from pacsone.models import Instance
from tests.helpers import make_file

pytestmark = pytest.mark.django_db


def settled(*paths):
    old = time.time() - 60
    for path in paths:
        os.utime(path, (old, old))


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".autoscan"))


def test_dicom_files_and_zips_are_imported_and_moved_aside(tmp_path):
    study_uid = generate_uid()
    first = make_file(tmp_path / "scan", "a.dcm", patient_id="SCAN1", study_uid=study_uid)
    nested = make_file(tmp_path / "scan" / "sub", "b.dcm", patient_id="SCAN1", study_uid=study_uid)
    inner = make_file(tmp_path / "zipsrc", "c.dcm", patient_id="SCAN2")
    archive = tmp_path / "scan" / "batch.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(inner, "c.dcm")
    settled(first, nested, archive)

    report = autoscan.scan_folder(tmp_path / "scan")

    assert sorted(report.imported) == ["a.dcm", "batch.zip", "sub/b.dcm"]
    assert Instance.objects.count() == 3
    left = files_under(tmp_path / "scan")
    assert all(name.startswith(".done/") for name in left) and len(left) == 3
    # One journal entry per study and scan.
    assert Entry.objects.filter(action="import", target__contains="autoscan").count() == 2
    # A second scan finds nothing new.
    assert str(autoscan.scan_folder(tmp_path / "scan")).startswith("0 imported")


def test_garbage_moves_to_failed_with_its_reason(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    junk = folder / "notes.txt"
    junk.write_text("not an image")
    settled(junk)
    report = autoscan.scan_folder(folder)
    assert report.failed == ["notes.txt"]
    reasons = list(folder.glob(".failed/*/notes.txt.reason.txt"))
    assert reasons and "unreadable" in reasons[0].read_text()


def test_a_file_still_being_written_waits(tmp_path):
    fresh = make_file(tmp_path / "scan", "new.dcm")
    report = autoscan.scan_folder(tmp_path / "scan")
    assert report.waiting == ["new.dcm"] and fresh.exists() and Instance.objects.count() == 0


def test_our_own_failures_are_retried_a_few_times_then_set_aside(tmp_path):
    path = make_file(tmp_path / "scan", "a.dcm")
    settled(path)
    failing = IngestResult(Outcome.FAILED, reason="database is down")
    with mock.patch("pacsone.importer.ingest_file", return_value=failing):
        for _ in range(autoscan.MAX_ATTEMPTS - 1):
            assert autoscan.scan_folder(tmp_path / "scan").retrying == ["a.dcm"]
        assert autoscan.scan_folder(tmp_path / "scan").failed == ["a.dcm"]
    assert not path.exists()
    assert "failed 3 times" in next((tmp_path / "scan").glob(".failed/*/a.dcm.reason.txt")).read_text()


def test_scans_never_overlap(tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    with autoscan.exclusive(folder) as mine:
        assert mine
        assert autoscan.scan_folder(folder).skipped_busy


def test_the_schedule_follows_the_setting(tmp_path, settings):
    from django_q.models import Schedule

    from pacsone.schedules import ensure_schedules

    settings.PACS_AUTOSCAN_DIR = str(tmp_path / "incoming")
    ensure_schedules()
    assert Schedule.objects.get(name="auto-scan import").minutes == 1
    assert (tmp_path / "incoming").is_dir()
    settings.PACS_AUTOSCAN_MINUTES = 5
    ensure_schedules()
    assert Schedule.objects.get(name="auto-scan import").minutes == 5
    settings.PACS_AUTOSCAN_DIR = ""
    ensure_schedules()
    assert not Schedule.objects.filter(name="auto-scan import").exists()


def test_the_command_scans_once(tmp_path, capsys):
    settled(make_file(tmp_path, "a.dcm"))
    call_command("autoscan", str(tmp_path))
    assert "1 imported" in capsys.readouterr().out
