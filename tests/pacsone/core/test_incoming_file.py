"""The SCP's received-file writer: checksum while writing, one sync however often asked."""

from pathlib import Path
from unittest import mock

import pytest

from pacsone import storage


def test_it_knows_the_checksum_of_what_was_written(tmp_path):
    incoming = storage.IncomingFile(tmp_path, ".dcm")
    incoming.write(b"\0" * 128 + b"DICM")
    incoming.file.flush()
    incoming.write(bytearray(b"x" * 100_000))
    incoming.close()
    assert incoming.checksum() == storage.checksum(Path(incoming.name))
    assert Path(incoming.name).parent == tmp_path and incoming.name.endswith(".dcm")


def test_it_syncs_once_however_often_asked(tmp_path):
    incoming = storage.IncomingFile(tmp_path)
    incoming.write(b"data")
    with mock.patch("pacsone.storage.os.fdatasync") as fdatasync:
        for _ in range(3):
            incoming.sync()
    assert fdatasync.call_count == 1
    incoming.close()


def test_a_failed_sync_fails_every_caller(tmp_path):
    incoming = storage.IncomingFile(tmp_path)
    with mock.patch("pacsone.storage.os.fdatasync", side_effect=OSError(5, "I/O error")):
        with pytest.raises(OSError):
            incoming.sync()
    with pytest.raises(OSError):
        incoming.sync()
    incoming.close()


def test_a_file_closed_unsynced_cannot_be_synced_any_more(tmp_path):
    incoming = storage.IncomingFile(tmp_path)
    incoming.close()
    with pytest.raises(OSError):
        incoming.sync()
