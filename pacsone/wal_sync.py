"""SQLite index commits of the ingest, made durable after the write lock is released.

With synchronous=FULL (the settings' default) SQLite fsyncs the WAL inside each COMMIT, while it
holds the database's one write lock (and we hold index_lock's): every other association storing
at that moment waits for that fsync too. Here the ingest's transaction commits with
synchronous=NORMAL (the frames are written to the WAL, not synced), the locks are released, and
the WAL file is then fsynced by us before the instance is answered. The row is as durable as
with FULL when Success goes out; what changes is that other writers no longer queue behind the
fsync, and that threads whose commits finished together share one fsync.

Why that is enough (https://www.sqlite.org/wal.html, pragma.html#pragma_synchronous): a commit
appends its frames to the WAL; they are overwritten only after a checkpoint copied them into the
database file, and with synchronous=NORMAL SQLite syncs the WAL before each checkpoint and the
database file after it. So once our fsync of the WAL returns, each earlier commit is on disk,
either in the WAL or in the synced database file.
"""

import os
import threading
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


def applies() -> bool:
    """Only for SQLite's WAL, and only where this code commits (not inside a caller's
    transaction, whose commit comes later and keeps the connection's own synchronous mode)."""
    connection = connections[DEFAULT_DB_ALIAS]
    return connection.vendor == "sqlite" and not connection.in_atomic_block


@contextmanager
def unsynced_commit():
    """The transaction inside commits without syncing the WAL; sync() must follow before the
    commit is relied upon. Restores synchronous=FULL on the connection in any case."""
    connection = connections[DEFAULT_DB_ALIAS]
    connection.ensure_connection()
    raw = connection.connection  # sqlite3's own: a PRAGMA needs none of Django's cursor wrapping
    raw.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        if connection.connection is raw:  # (a connection closed meanwhile: its successor opens with FULL)
            raw.execute("PRAGMA synchronous=FULL")


class _Syncer:
    """One fsync of the WAL at a time per process; a thread whose commit finished before an
    fsync began is covered by it and does not sync again."""

    def __init__(self):
        self._condition = threading.Condition()
        self._committed = 0  # commits done (numbered in order)
        self._synced = 0  # every commit up to this number is durable
        self._syncing = False

    def committed(self) -> int:
        """Call right after a commit, still holding the write lock: its ticket for wait()."""
        with self._condition:
            self._committed += 1
            return self._committed

    def wait(self, ticket: int, wal_path: str) -> None:
        """Return once commit `ticket` is durable; OSError if the fsync that covered it failed."""
        with self._condition:
            while self._synced < ticket:
                if self._syncing:
                    self._condition.wait()
                    continue
                self._syncing, target = True, self._committed
                self._condition.release()
                try:
                    _fsync_file(wal_path)
                finally:
                    self._condition.acquire()
                    self._syncing = False
                    self._condition.notify_all()
                self._synced = max(self._synced, target)


def _fsync_file(path: str) -> None:
    # Opened each time: SQLite deletes the WAL when its last connection closes and makes a new one.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # checkpointed into the database file and removed: SQLite synced that file
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_syncer = _Syncer()


def ticket() -> int:
    return _syncer.committed()


def sync(ticket_number: int) -> None:
    _syncer.wait(ticket_number, str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]) + "-wal")
