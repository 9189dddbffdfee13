"""Administering storage locations (System Administration; the storage pages and
`manage.py storagelocations`): add one, change its name or watermarks, make it current for new
studies. Each change is journaled in its transaction. A location's folder is fixed once added:
index rows name files relative to it (moving files is Change Storage's job)."""

import os
from pathlib import Path

from django.db import IntegrityError, transaction

from audit.journal import Action, record

from . import storage
from .models import StorageLocation


class LocationError(ValueError):
    """A location that cannot be added or changed so, with the reason in words."""


def check_watermarks(high: int | None, low: int | None) -> None:
    if high is None and low is None:
        return
    if high is None or low is None:
        raise LocationError("set both watermarks, or neither")
    if not (0 <= low < high <= 100):
        raise LocationError("the low watermark must be below the high one, both between 0 and 100 percent")


def check_folder(path: str) -> str:
    """The folder as it will be stored: absolute, made if missing, writable, no other location's."""
    if not path or not os.path.isabs(path):
        raise LocationError("give the folder as an absolute path, e.g. /srv/pacs/storage2")
    folder = str(Path(path).resolve())
    for other in StorageLocation.objects.all():
        other_folder = str(Path(other.path).resolve())
        if folder == other_folder or folder.startswith(other_folder + os.sep) or other_folder.startswith(folder + os.sep):
            raise LocationError(f"the folder overlaps the location {other.name}")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "tmp").mkdir(exist_ok=True)
    except OSError as error:
        raise LocationError(f"cannot make the folder: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LocationError("the server cannot write in that folder")
    return folder


def describe(location: StorageLocation) -> str:
    marks = (f"purge above {location.high_watermark}% down to below {location.low_watermark}%"
             if location.high_watermark is not None else "never purged")
    return f"{location.name} at {location.path}, {marks}{', current' if location.is_default else ''}"


def do_add_location(name: str, path: str, high: int | None = None, low: int | None = None, *,
                    acting_user=None, username: str = "", request=None) -> StorageLocation:
    name = name.strip()
    if not name or len(name) > 64:
        raise LocationError("a location needs a name of up to 64 characters")
    check_watermarks(high, low)
    folder = check_folder(path)
    try:
        with transaction.atomic():
            location = StorageLocation.objects.create(name=name, path=folder, high_watermark=high, low_watermark=low)
            record(Action.CONFIGURATION, request=request, user=acting_user, username=username,
                   target=f"storage {name}", detail=f"added: {describe(location)}")
    except IntegrityError:
        raise LocationError(f"a location named {name} exists already") from None
    return location


def do_change_location(location: StorageLocation, name: str, high: int | None, low: int | None, *,
                       acting_user=None, username: str = "", request=None) -> StorageLocation:
    name = name.strip()
    if not name or len(name) > 64:
        raise LocationError("a location needs a name of up to 64 characters")
    check_watermarks(high, low)
    if StorageLocation.objects.filter(name=name).exclude(pk=location.pk).exists():
        raise LocationError(f"a location named {name} exists already")
    with transaction.atomic():
        location.name, location.high_watermark, location.low_watermark = name, high, low
        location.save(update_fields=["name", "high_watermark", "low_watermark"])
        record(Action.CONFIGURATION, request=request, user=acting_user, username=username,
               target=f"storage {name}", detail=f"changed: {describe(location)}")
    storage.forget_default_location()
    return location


def do_set_current(location: StorageLocation, *, acting_user=None, username: str = "", request=None) -> None:
    """New studies go to `location` from now on (every process within a minute)."""
    try:
        storage.set_current_location(location)
    except OSError as error:
        raise LocationError(f"cannot use {location.path}: {error.strerror or error}") from None
    record(Action.CONFIGURATION, request=request, user=acting_user, username=username,
           target=f"storage {location.name}", detail=f"made current for new studies: {describe(location)}")
