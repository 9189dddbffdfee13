"""`manage.py backup` / `restore`: a snapshot of the index and the files, restored into an empty
database and an empty folder, passes `verifystorage` (SQLite, and MariaDB/PostgreSQL in CI)."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from pacsone import storage
from pacsone.models import Instance, Patient, StorageLocation
from tests.routing.archive import store_study

pytestmark = pytest.mark.django_db(transaction=True)


def wipe_index() -> None:
    """An empty archive, as a new server's (the rows go; the tables stay)."""
    Patient.objects.all().delete()
    StorageLocation.objects.all().delete()
    storage.forget_default_location()


def test_backup_then_restore_into_an_empty_folder_passes_verifystorage(tmp_path):
    store_study(tmp_path / "in", "1.2.826.0.1.3680043.10.1019.1", 4)
    store_study(tmp_path / "in", "1.2.826.0.1.3680043.10.1019.2", 2)
    before = sorted(Instance.objects.values_list("sop_instance_uid", "sha256"))
    out = StringIO()
    call_command("backup", str(tmp_path / "backup"), "--no-progress", stdout=out)
    assert "6 files" in out.getvalue()
    assert len((tmp_path / "backup" / "manifest.jsonl").read_text().splitlines()) == 6

    with pytest.raises(CommandError, match="already holds instances"):
        call_command("restore", str(tmp_path / "backup"), "--storage-dir", str(tmp_path / "new"), "--no-progress")
    wipe_index()
    out = StringIO()
    call_command("restore", str(tmp_path / "backup"), "--storage-dir", str(tmp_path / "new"), "--no-progress",
                 stdout=out)
    assert "6 files" in out.getvalue()
    assert sorted(Instance.objects.values_list("sop_instance_uid", "sha256")) == before
    assert StorageLocation.objects.get(name="default").path == str(tmp_path / "new" / "default")
    checked = StringIO()
    call_command("verifystorage", "--no-progress", stdout=checked)
    assert "All 6 indexed files are present and intact." in checked.getvalue()
    assert not any(p.is_relative_to(settings.STORAGE_DIR) for p in map(storage._path_of, Instance.objects.all()))


def test_a_file_missing_at_backup_time_is_reported(tmp_path):
    study = store_study(tmp_path / "in", "1.2.826.0.1.3680043.10.1019.3", 2)
    instance = Instance.objects.filter(series__study=study).first()
    storage._path_of(instance).unlink()
    err = StringIO()
    with pytest.raises(CommandError, match="1 file could not be backed up"):
        call_command("backup", str(tmp_path / "backup"), "--no-progress", stdout=StringIO(), stderr=err)
    assert f"missing: default:{instance.file_path}" in err.getvalue()


def test_backup_refuses_a_folder_that_is_not_empty_and_restore_a_folder_without_backup(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(CommandError, match="is not empty"):
        call_command("backup", str(tmp_path / "full"), "--no-progress")
    with pytest.raises(CommandError, match="holds no backup"):
        call_command("restore", str(tmp_path / "full"), "--no-progress")
