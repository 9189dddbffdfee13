"""Where DICOM files live on disk, and how they get there without ever being half-written.

Invariant 5: a file is never named after untrusted input. Paths are
`<aa>/<study-hash>/<content-sha256>.dcm`, where study-hash is a SHA-256 of the (validated)
Study Instance UID, so a study's files sit together while no UID or patient field appears.
"""

import concurrent.futures
import errno
import hashlib
import itertools
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from django.conf import settings

from .models import StorageLocation

HASH_CHUNK = 1024 * 1024
# fsyncs started early so that the disk works while the caller goes on (os.fsync releases the
# GIL): a copied file's folder while the index row commits (sync_folder_soon).
SYNC_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")


def _started_soon(work, *args) -> concurrent.futures.Future:
    """Run `work` on a SYNC_POOL thread and return once that thread has begun it. Without the
    wait, the pool thread needs the GIL to begin and the caller, busy in Python, keeps it (for
    up to the 5 ms switch interval): the caller reached the sync itself and did it inline,
    and nothing overlapped. Waiting hands the GIL over; the sync then releases it."""
    started = threading.Event()

    def run():
        started.set()
        return work(*args)

    future = SYNC_POOL.submit(run)
    started.wait()
    return future
_default_location_cache: dict = {}
_locations_by_pk: dict[int, StorageLocation] = {}
DEFAULT_LOCATION_RECHECK_SECONDS = 60


def default_location() -> StorageLocation:
    """The location new instances go to: the one marked default, else `<data>/storage`."""
    cached = _default_location_cache.get("default")
    # Another process (the web page, `storagelocations current`) may change the current
    # location: each process looks again once a minute.
    if cached is not None and time.monotonic() < _default_location_cache.get("until", 0):
        return cached
    location = StorageLocation.objects.filter(is_default=True).first()
    if location is None:
        location, _ = StorageLocation.objects.get_or_create(
            name="default", defaults={"path": str(settings.STORAGE_DIR), "is_default": True}
        )
    Path(location.path).mkdir(parents=True, exist_ok=True)
    temp_dir(location).mkdir(parents=True, exist_ok=True)
    _default_location_cache["default"] = location
    _default_location_cache["until"] = time.monotonic() + DEFAULT_LOCATION_RECHECK_SECONDS
    return location


def forget_default_location() -> None:
    """Drop the cached default and the cached locations (tests and storage changes)."""
    _default_location_cache.clear()
    _locations_by_pk.clear()


def temp_dir(location: StorageLocation) -> Path:
    """Incoming files are written here first: the same filesystem, so placing them is a rename."""
    return Path(location.path) / "tmp"


def new_temp_path(location: StorageLocation) -> Path:
    fd, name = tempfile.mkstemp(suffix=".part", dir=temp_dir(location))
    os.close(fd)
    return Path(name)


class IncomingFile:
    """A new file in a temp folder that keeps the SHA-256 and size of what is written to it,
    so that it need not be read again to be stored. File-like as far as pynetdicom's
    chunked C-STORE receive needs (`name`, `write`, `file.flush`, `close`). Used by one thread:
    the association's (ReceivedFile).

    `sync()` makes the data durable (fdatasync) once; a failed sync fails every later call."""

    _counter = itertools.count()
    # What a subclass that checks the data set as it arrives found (dataset_structure.py): the
    # data set is whole, or why it is not; neither: the ingest checks the file itself.
    checked_whole = False
    truncation: ValueError | None = None

    def __init__(self, folder: Path, suffix: str = ".part", opened: tuple[str, int] | None = None):
        """`opened`: a new empty file that open_temp(folder, suffix) created ahead of time."""
        self.name, self._fd = opened or open_temp(folder, suffix)
        self._digest = hashlib.sha256()
        self.size = 0
        self._synced = False
        self._sync_error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass  # unbuffered

    @property
    def file(self) -> "IncomingFile":
        # pynetdicom flushes `file.file` after each fragment. A property, not an attribute holding
        # self: that reference cycle left each received data set (its header's hundreds of
        # objects) to the cyclic garbage collector, ~0.2 ms of CPU per instance.
        return self

    def checksum(self) -> tuple[str, int]:
        """SHA-256 and size of what was written, as `checksum(path)` would return them."""
        return self._digest.hexdigest(), self.size

    def sync(self) -> None:
        """fdatasync what was written (once); raise OSError if that failed or the file is closed."""
        if not self._synced:
            if self._fd < 0:
                raise OSError(errno.EBADF, "the received file was closed before it was synced")
            self._synced = True
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self._sync_error = exc
        if self._sync_error is not None:
            raise self._sync_error

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Close and delete: the data set never arrived whole, or nobody will store it."""
        self.close()
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass


def open_temp(folder: Path, suffix: str) -> tuple[str, int]:
    """A new empty file in a temp folder: its name and a descriptor open for writing."""
    name = str(folder / f"{os.getpid()}-{next(IncomingFile._counter)}-{secrets.token_hex(4)}{suffix}")
    return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)


def discard_temp(opened: tuple[str, int]) -> None:
    """Close and delete an unused file from open_temp()."""
    name, fd = opened
    os.close(fd)
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def hash_text(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def relative_path_for(study_instance_uid: str, content_sha256: str) -> str:
    study_hash = hash_text(study_instance_uid)[:24]
    return f"{study_hash[:2]}/{study_hash}/{content_sha256}.dcm"


def absolute_path(location: StorageLocation, relative_path: str) -> Path:
    return Path(location.path) / relative_path


def checksum(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_path(path: Path, sync=os.fsync) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        sync(fd)
    finally:
        os.close(fd)


def place(temp_path: Path, location: StorageLocation, relative_path: str, synced: bool = False,
          sync_folder: bool = True) -> Path:
    """Durably move a finished temp file to its final name: fsync, rename, fsync the folder.
    (fdatasync for the file: its data and size, not its timestamps, must be on disk; `synced`
    when the caller made sure of that already; `sync_folder=False` when the caller syncs the
    folder itself, see sync_folder_soon().)"""
    final = absolute_path(location, relative_path)
    if not synced:
        _fsync_path(temp_path, os.fdatasync)
    make_folders(final.parent)
    os.replace(temp_path, final)
    if sync_folder:
        _fsync_path(final.parent)
    return final


def place_unsynced(temp_path: Path, location: StorageLocation, relative_path: str) -> Path | None:
    """Move a written, not yet synced temp file to its final name, when no file has that name;
    the caller then syncs the file and its folder (sync_placed) before anything refers to it.
    Syncing after the rename costs one journal commit where place() costs two (measured on ext4:
    0.8-0.9 against 1.3-1.5 ms of wall time per 140 kB file). None when the name exists: names
    are content hashes, so that file holds these bytes and may be referenced already; unsynced
    bytes must not replace it (place() syncs first). Until synced the file has no index row:
    should power fail, it is an unreferenced file that a re-send of the same bytes replaces."""
    final = absolute_path(location, relative_path)
    if os.path.exists(final):
        return None
    try:  # the study's folder exists but for its first instance: no mkdir per instance
        os.replace(temp_path, final)
    except FileNotFoundError:
        make_folders(final.parent)
        os.replace(temp_path, final)
    return final


def make_folders(folder: Path) -> None:
    """mkdir -p, durably: each folder created here has its name synced into its parent (the
    file's own folder sync makes the file's name durable, not the folders above it)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:  # made meanwhile by another thread, whose sync may not be done yet
            pass
        _fsync_path(created.parent)


def sync_placed(incoming: "IncomingFile", final: Path) -> None:
    """Make a file moved by place_unsynced() durable: its data, then its name."""
    incoming.sync()
    _fsync_path(final.parent)


def sync_folder_soon(folder: Path) -> concurrent.futures.Future:
    """fsync a folder (making a rename in it durable) on another thread; result() waits."""
    return _started_soon(_fsync_path, folder)


def remove(location: StorageLocation, relative_path: str) -> None:
    try:
        absolute_path(location, relative_path).unlink()
    except FileNotFoundError:
        pass


# --- The interface every other module reads stored files through ------------------------------------
# place() and remove() above write and delete; open_stored(), read_range(), exists() read; usage()
# measures a location. No module outside this one joins a location's folder with a file's
# relative path (tests/pacsone/core/test_storage_gate.py), so a location on another backend
# (an S3-compatible store) needs changes here only.

def location_by_pk(pk: int) -> StorageLocation:
    """A storage location by primary key, cached: a location's folder never changes once made
    (the pages and `storagelocations` let an administrator rename it or change its watermarks,
    never move it)."""
    location = _locations_by_pk.get(pk)
    if location is None:
        location = _locations_by_pk[pk] = StorageLocation.objects.get(pk=pk)
    return location


def _path_of(instance) -> Path:
    """Where an indexed instance's file is (anything with storage_location_id and file_path)."""
    return absolute_path(location_by_pk(instance.storage_location_id), instance.file_path)


def open_file(location: StorageLocation, relative_path: str) -> BinaryIO:
    """A stored file opened for reading, as a real file (fileno() works: the DICOM engine sends
    it with sendfile). FileNotFoundError when it is missing."""
    return open(absolute_path(location, relative_path), "rb")


def open_stored(instance) -> BinaryIO:
    """The stored file of an indexed instance, opened for reading (see open_file())."""
    return open(_path_of(instance), "rb")


def opener(location_pk: int, relative_path: str) -> Callable[[], BinaryIO]:
    """A function that opens one stored file when called: for code that must not know where
    files live (the DICOM engine, importable without Django)."""
    return lambda: open_file(location_by_pk(location_pk), relative_path)


def read_range(instance, offset: int, length: int) -> bytes:
    """`length` bytes of an instance's stored file from `offset` (fewer at its end): for byte
    ranges (HTTP Range, bulk data) without reading the whole file."""
    if offset < 0 or length < 0:
        raise ValueError("a range needs a non-negative offset and length")
    fd = os.open(_path_of(instance), os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts, position, wanted = [], offset, length
        while wanted:
            part = os.pread(fd, min(wanted, HASH_CHUNK), position)
            if not part:
                break
            parts.append(part)
            position += len(part)
            wanted -= len(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def stored_size(instance) -> int:
    """The size of an instance's stored file as it is now (FileNotFoundError when missing)."""
    return _path_of(instance).stat().st_size


def exists(location: StorageLocation, relative_path: str) -> bool:
    return absolute_path(location, relative_path).exists()


def stored_exists(instance) -> bool:
    return _path_of(instance).exists()


def stored_checksum(instance) -> tuple[str, int]:
    """SHA-256 and size of an instance's stored file as it is now."""
    return checksum(_path_of(instance))


def describe(instance) -> str:
    """Where an instance's file is, in words for administrators (verifystorage's report)."""
    location = location_by_pk(instance.storage_location_id)
    return f"{location.name}:{instance.file_path}"


@dataclass(frozen=True)
class Usage:
    """Space of the filesystem that holds a location."""

    total_bytes: int
    used_bytes: int

    @property
    def free_bytes(self) -> int:
        return self.total_bytes - self.used_bytes

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes else 100.0


def usage(location: StorageLocation) -> Usage:
    """Used space as `df` counts it: blocks in use (the root-reserved ones are neither used
    nor available to us, so they count in neither figure)."""
    stats = os.statvfs(location.path)
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return Usage(total_bytes=used + stats.f_bavail * stats.f_frsize, used_bytes=used)


def copy_to(instance, target: StorageLocation) -> None:
    """Copy an instance's stored file to the same relative path in `target`, durably, and check
    that the copy's SHA-256 is the one indexed before anything else relies on it (Change
    Storage). Raises StorageError when it differs; the bad copy is removed."""
    Path(target.path).mkdir(parents=True, exist_ok=True)
    temp_dir(target).mkdir(parents=True, exist_ok=True)
    name, fd = open_temp(temp_dir(target), ".part")
    try:
        with open_stored(instance) as source, os.fdopen(fd, "wb", closefd=True) as out:
            while chunk := source.read(HASH_CHUNK):
                out.write(chunk)
        copied_sha256, copied_size = checksum(Path(name))
        if copied_sha256 != instance.sha256 or copied_size != instance.file_size:
            raise StorageError(f"the copy of {instance.sop_instance_uid} in {target.name} does not match its "
                               "indexed SHA-256 (the source file is damaged or changed)")
        place(Path(name), target, instance.file_path)
    except BaseException:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        raise


class StorageError(Exception):
    """A stored file is not what the index says."""


def current_location() -> StorageLocation:
    """The location new studies go to (System Administration sets it)."""
    return default_location()


def set_current_location(location: StorageLocation) -> None:
    """Make `location` the one new studies go to; its folders are made now, so that a location
    that cannot be written is refused here and not at the next C-STORE."""
    from django.db import transaction

    Path(location.path).mkdir(parents=True, exist_ok=True)
    temp_dir(location).mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        StorageLocation.objects.exclude(pk=location.pk).filter(is_default=True).update(is_default=False)
        StorageLocation.objects.filter(pk=location.pk).update(is_default=True)
    location.is_default = True
    forget_default_location()
