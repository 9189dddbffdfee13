"""One writer of the SQLite index at a time, queued instead of busy-waiting.

SQLite allows one writer; a second one that finds the database locked sleeps in SQLite's busy
handler (1, 2, 5, 10, ... ms) and tries again. With several SCP worker processes and threads
storing at once, those sleeps, not the work, set the pace. Writers of the ingest path therefore
queue on a lock first: a thread lock within the process and an flock() on a file across
processes, both of which wake the next writer the moment the previous one is done.
MariaDB has row locks and needs none of this.
"""

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

_thread_lock = threading.Lock()
_lock_file: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own


def _lock_fd() -> int:
    global _lock_file
    if _lock_file is None or _lock_file[0] != os.getpid():
        path = Path(settings.DATA_DIR) / "index-write.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        _lock_file = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    return _lock_file[1]


@contextmanager
def index_writer():
    """Hold while writing the index (SQLite only)."""
    if connection.vendor != "sqlite":
        yield
        return
    with _thread_lock:
        fd = _lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
