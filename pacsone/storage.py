"""Where DICOM files live on disk, and how they get there without ever being half-written.

Invariant 5: a file is never named after untrusted input. Paths are
`<aa>/<study-hash>/<content-sha256>.dcm`, where study-hash is a SHA-256 of the (validated)
Study Instance UID, so a study's files sit together while no UID or patient field appears.
"""

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings

from .models import StorageLocation

HASH_CHUNK = 1024 * 1024
_default_location_cache: dict[str, StorageLocation] = {}


def default_location() -> StorageLocation:
    """The location new instances go to: the one marked default, else `<data>/storage`."""
    cached = _default_location_cache.get("default")
    if cached is not None:
        return cached
    location = StorageLocation.objects.filter(is_default=True).first()
    if location is None:
        location, _ = StorageLocation.objects.get_or_create(
            name="default", defaults={"path": str(settings.STORAGE_DIR), "is_default": True}
        )
    Path(location.path).mkdir(parents=True, exist_ok=True)
    temp_dir(location).mkdir(parents=True, exist_ok=True)
    _default_location_cache["default"] = location
    return location


def forget_default_location() -> None:
    """Drop the cached default (tests and storage changes)."""
    _default_location_cache.clear()


def temp_dir(location: StorageLocation) -> Path:
    """Incoming files are written here first: the same filesystem, so placing them is a rename."""
    return Path(location.path) / "tmp"


def new_temp_path(location: StorageLocation) -> Path:
    fd, name = tempfile.mkstemp(suffix=".part", dir=temp_dir(location))
    os.close(fd)
    return Path(name)


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


def _fsync_path(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(temp_path: Path, location: StorageLocation, relative_path: str) -> Path:
    """Durably move a finished temp file to its final name: fsync, rename, fsync the folder."""
    final = absolute_path(location, relative_path)
    _fsync_path(temp_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp_path, final)
    _fsync_path(final.parent)
    return final


def remove(location: StorageLocation, relative_path: str) -> None:
    try:
        absolute_path(location, relative_path).unlink()
    except FileNotFoundError:
        pass
