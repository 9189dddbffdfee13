"""A received file is renamed to its final name first and then synced (data, then folder), all
before its index row is committed; a file of that name already stored is never replaced by
unsynced bytes; a failed sync leaves neither the file nor a row."""

import gc
import os
import weakref
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

from pacsone import ingest, storage
from pacsone.dicom.receiving import ReceivedFile
from pacsone.ingest import Origin, Outcome, ingest_file
from pacsone.models import Instance
from tests.helpers import dataset_bytes, make_dataset, stored_files, write_dataset

pytestmark = pytest.mark.django_db

ORIGIN = Origin("dicom", ae_title="MODALITY")


def received_file(tmp_path: Path, ds=None) -> ReceivedFile:
    ds = ds or make_dataset()
    data = dataset_bytes(write_dataset(ds, tmp_path / "source.dcm"))
    location = storage.default_location()
    received = ReceivedFile(storage.temp_dir(location), ds.SOPClassUID, ds.SOPInstanceUID, ExplicitVRLittleEndian,
                            "MODALITY")
    received.write(data)
    received.finish()
    return received


def ingest_received(received: ReceivedFile):
    try:
        return ingest_file(Path(received.name), ORIGIN, adopt=True, received=received, header=received.header,
                           header_json=received.header_json)
    finally:
        received.close()


@contextmanager
def placement_events():
    """The renames, syncs and the index transaction of what runs inside, in order."""
    events = []
    real_replace, real_fdatasync, real_fsync_path, real_index = (os.replace, os.fdatasync, storage._fsync_path,
                                                                 ingest._index)

    def index(*args):
        events.append("index")
        return real_index(*args)

    with mock.patch("pacsone.storage.os.replace", side_effect=lambda *a: (events.append("rename"), real_replace(*a))), \
            mock.patch("pacsone.storage.os.fdatasync", side_effect=lambda fd: (events.append("fdatasync"), real_fdatasync(fd))), \
            mock.patch("pacsone.storage._fsync_path",
                       side_effect=lambda path: (events.append(("fsync", path)), real_fsync_path(path))), \
            mock.patch("pacsone.ingest._index", side_effect=index):
        yield events


def test_the_file_and_its_name_are_synced_before_the_row_is_committed(tmp_path):
    received = received_file(tmp_path)
    with placement_events() as events:
        result = ingest_received(received)
    assert result.outcome is Outcome.STORED
    instance = Instance.objects.get()
    final = storage.absolute_path(instance.storage_location, instance.file_path)
    # (What follows the row, a thumbnail written by the follow-up task, is not the ingest's.) The
    # study's first instance: the rename fails for want of its folders, which are made, each
    # name synced into its parent, before the rename that follows.
    assert events[:events.index("index") + 1] == [
        "rename", ("fsync", final.parent.parent.parent), ("fsync", final.parent.parent), "rename", "fdatasync",
        ("fsync", final.parent), "index"]
    assert storage.checksum(storage.absolute_path(instance.storage_location, instance.file_path)) == (
        instance.sha256, instance.file_size)

    # The study's next instance: its folder is there, nothing above it is touched.
    second = received_file(tmp_path, make_dataset(StudyInstanceUID=instance.series.study.study_instance_uid))
    with placement_events() as events:
        assert ingest_received(second).outcome is Outcome.STORED
    assert events[:events.index("index") + 1] == ["rename", "fdatasync", ("fsync", final.parent), "index"]


def test_an_existing_file_of_that_name_is_not_replaced_by_unsynced_bytes(tmp_path):
    location = storage.default_location()
    existing = storage.absolute_path(location, "ab/abcdef/same.dcm")
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"stored before")
    temp = storage.temp_dir(location) / "new.part"
    temp.write_bytes(b"stored before")
    assert storage.place_unsynced(temp, location, "ab/abcdef/same.dcm") is None
    assert temp.exists() and existing.read_bytes() == b"stored before"


def test_the_same_bytes_received_again_are_synced_before_they_replace_the_stored_file(tmp_path):
    ds = make_dataset()
    assert ingest_received(received_file(tmp_path, ds)).outcome is Outcome.STORED
    (stored,) = stored_files()
    again = received_file(tmp_path, ds)
    with mock.patch("pacsone.storage.place", wraps=storage.place) as place:
        second = ingest_received(again)
    assert second.outcome.accepted
    assert place.call_count == 1 and place.call_args.kwargs["synced"] is True
    instance = Instance.objects.get()
    assert stored_files() == [stored]
    assert storage.checksum(stored) == (instance.sha256, instance.file_size)


def test_a_failed_sync_leaves_no_file_and_no_row(tmp_path):
    received = received_file(tmp_path)
    with mock.patch("pacsone.storage.os.fdatasync", side_effect=OSError(5, "Input/output error")):
        result = ingest_received(received)
    assert result.outcome is Outcome.FAILED
    assert "could not write the file" in result.reason
    assert not Instance.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize("sop_uid", ["1.2.3.4", "1.2.3.45"])  # even and odd lengths (padded with a NUL)
def test_a_received_file_knows_its_file_meta_as_pydicom_reads_it_back(tmp_path, sop_uid):
    received = received_file(tmp_path, make_dataset(sop_uid=sop_uid))
    received.close()
    meta = dcmread(received.name, stop_before_pixels=True).file_meta
    assert received.file_meta_values == {keyword: str(meta[keyword].value) for keyword in received.file_meta_values}


def test_the_row_of_a_received_file_is_the_row_of_the_same_file_imported(tmp_path):
    ds = make_dataset(InstanceNumber=17)
    received = ingest_received(received_file(tmp_path, ds))
    imported_file = write_dataset(make_dataset(InstanceNumber=17), tmp_path / "imported.dcm")
    imported = ingest_file(imported_file, Origin("import"))
    rows = {row.pk: row for row in Instance.objects.all()}
    one, other = rows[received.instance_pk], rows[imported.instance_pk]
    assert (one.instance_number, one.transfer_syntax_uid) == (other.instance_number, other.transfer_syntax_uid) == (
        17, ExplicitVRLittleEndian)


# --- The index row: committed without syncing the WAL under the write lock, synced before the answer


def test_the_wal_is_synced_after_the_commit_and_before_the_ingest_returns(tmp_path, transactional_db):
    from django.db import connection

    from pacsone import wal_sync

    if connection.vendor != "sqlite":
        pytest.skip("the WAL is SQLite's")
    received = received_file(tmp_path)
    events = []
    real_index, real_fsync_file = ingest._index, wal_sync._fsync_file

    def index(*args):
        with connection.cursor() as cursor:
            events.append(("synchronous", cursor.execute("PRAGMA synchronous").fetchone()[0]))
        result = real_index(*args)
        events.append(("row committed", Instance.objects.filter(pk=result.instance_pk).exists()))
        return result

    with mock.patch("pacsone.ingest._index", side_effect=index), \
            mock.patch("pacsone.wal_sync._fsync_file",
                       side_effect=lambda path: (events.append(("fsync", path)), real_fsync_file(path))):
        result = ingest_received(received)
    assert result.outcome is Outcome.STORED
    assert events == [("synchronous", 1), ("row committed", True), ("fsync", connection.settings_dict["NAME"] + "-wal")]
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for every other write


def test_commits_that_finished_before_an_fsync_began_share_it():
    from pacsone.wal_sync import _Syncer

    syncer = _Syncer()
    first, second = syncer.committed(), syncer.committed()
    with mock.patch("pacsone.wal_sync._fsync_file") as fsync:
        syncer.wait(first, "wal")
        syncer.wait(second, "wal")  # covered by the first fsync
        assert fsync.call_count == 1
        syncer.wait(syncer.committed(), "wal")
        assert fsync.call_count == 2


def test_a_failed_wal_fsync_fails_its_waiter_and_the_next_one_syncs_again():
    from pacsone.wal_sync import _Syncer

    syncer = _Syncer()
    ticket = syncer.committed()
    with mock.patch("pacsone.wal_sync._fsync_file", side_effect=OSError(5, "Input/output error")):
        with pytest.raises(OSError):
            syncer.wait(ticket, "wal")
    with mock.patch("pacsone.wal_sync._fsync_file") as fsync:
        syncer.wait(ticket, "wal")
    assert fsync.call_count == 1


def test_a_received_instance_is_freed_without_the_cycle_collector(tmp_path):
    """Nothing of a stored instance (its file object, its parsed header) may be left for the
    cyclic garbage collector: at hundreds of instances a second, its full collections stall the
    worker's associations (an attribute that held the file itself once did that)."""
    received = received_file(tmp_path)
    assert received.header is not None  # parsed early, as over the network
    file_ref, header_ref = weakref.ref(received), weakref.ref(received.header)
    # (The tests run queued tasks inline, in django-q's simulation, which keeps its callers' frames.)
    with mock.patch("pacsone.tasks.queue_after_ingest"):
        gc.disable()
        try:
            outcome = ingest_received(received).outcome
            del received
            assert outcome is Outcome.STORED
            assert file_ref() is None and header_ref() is None
        finally:
            gc.enable()
