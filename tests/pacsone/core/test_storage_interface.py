"""The storage interface (pacsone/storage.py): open, read a range, usage, copy with its SHA-256
checked, the current location for new studies."""

import hashlib

import pytest
from pydicom import dcmread

from pacsone import rendering, storage
from pacsone.models import Instance, StorageLocation
from tests.helpers import ingest_instance, make_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(tmp_path):
    return ingest_instance(make_file(tmp_path, "a.dcm"))


def test_open_stored_gives_the_indexed_bytes(instance):
    with storage.open_stored(instance) as f:
        data = f.read()
        assert f.fileno() >= 0  # a real file: the DICOM engine sends it with sendfile
    assert hashlib.sha256(data).hexdigest() == instance.sha256 and len(data) == instance.file_size
    with storage.open_stored(instance) as f:
        assert dcmread(f).SOPInstanceUID == instance.sop_instance_uid


def test_read_range_reads_only_the_range_asked_for(instance):
    with storage.open_stored(instance) as f:
        whole = f.read()
    assert storage.read_range(instance, 128, 4) == b"DICM"
    assert storage.read_range(instance, 0, instance.file_size) == whole
    assert storage.read_range(instance, instance.file_size - 10, 100) == whole[-10:]  # fewer at the end
    assert storage.read_range(instance, instance.file_size + 5, 10) == b""
    assert storage.read_range(instance, 200, 0) == b""
    with pytest.raises(ValueError):
        storage.read_range(instance, -1, 10)


def test_a_missing_file_is_file_not_found(instance):
    storage.remove(instance.storage_location, instance.file_path)
    assert not storage.stored_exists(instance)
    with pytest.raises(FileNotFoundError):
        storage.open_stored(instance)
    with pytest.raises(FileNotFoundError):
        storage.read_range(instance, 0, 10)
    with pytest.raises(rendering.RenderError, match="missing"):
        rendering.read_instance(instance)


def test_usage_measures_the_locations_filesystem(instance):
    usage = storage.usage(instance.storage_location)
    assert usage.total_bytes > 0 and 0 < usage.used_bytes <= usage.total_bytes
    assert usage.free_bytes == usage.total_bytes - usage.used_bytes
    assert 0 < usage.percent_used <= 100


def test_copy_to_checks_the_sha256_at_the_target(instance, tmp_path):
    target = StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))
    storage.copy_to(instance, target)
    with storage.open_file(target, instance.file_path) as f:
        assert hashlib.sha256(f.read()).hexdigest() == instance.sha256


def test_a_damaged_source_leaves_no_copy(instance, tmp_path):
    path = storage.absolute_path(instance.storage_location, instance.file_path)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    target = StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))
    with pytest.raises(storage.StorageError, match="does not match its indexed SHA-256"):
        storage.copy_to(instance, target)
    assert not storage.exists(target, instance.file_path)
    assert not list((tmp_path / "second" / "tmp").iterdir())


def test_new_studies_go_to_the_current_location(tmp_path):
    first = ingest_instance(make_file(tmp_path, "a.dcm"))
    second_location = StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))
    storage.set_current_location(second_location)
    second = ingest_instance(make_file(tmp_path, "b.dcm"))
    assert first.storage_location != second.storage_location
    assert second.storage_location_id == second_location.pk
    assert second.series.study.storage_location_id == second_location.pk
    assert list(StorageLocation.objects.filter(is_default=True)) == [second_location]
    assert storage.exists(second_location, second.file_path)
    assert rendering.read_instance(Instance.objects.get(pk=second.pk)).SOPInstanceUID == second.sop_instance_uid


def test_another_process_sees_a_new_current_location_within_a_minute(tmp_path, monkeypatch):
    first = storage.default_location()
    other = StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))
    StorageLocation.objects.filter(pk=first.pk).update(is_default=False)  # as another process would
    StorageLocation.objects.filter(pk=other.pk).update(is_default=True)
    assert storage.default_location() == first  # cached
    clock = storage.time.monotonic() + storage.DEFAULT_LOCATION_RECHECK_SECONDS + 1
    monkeypatch.setattr(storage.time, "monotonic", lambda: clock)
    assert storage.default_location() == other
