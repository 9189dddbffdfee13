"""Checking that every indexed file is still present and intact (`verifystorage`), in every
storage location, through the storage interface."""

import os
from dataclasses import dataclass
from typing import Iterator

from . import storage
from .models import Instance, StorageLocation

BATCH = 2000


@dataclass
class StorageProblem:
    sop_instance_uid: str
    path: str  # "<location name>:<relative path>", or the location's folder
    problem: str  # "missing", "size differs", "checksum differs", "unreadable: ...", "location ..."


def indexed_files_count() -> int:
    return Instance.objects.count()


def location_problems() -> Iterator[StorageProblem]:
    """Locations whose folder is gone or cannot be read: every file in them would be missing,
    and the administrator should see that first, once."""
    for location in StorageLocation.objects.order_by("name"):
        if not os.path.isdir(location.path):
            yield StorageProblem("", location.name, "location folder is missing")
        elif not os.access(location.path, os.R_OK | os.X_OK):
            yield StorageProblem("", location.name, "location folder cannot be read")


def files_per_location() -> dict[str, int]:
    """Indexed files in each location, by name (every location listed, empty ones too)."""
    counts = {location.name: 0 for location in StorageLocation.objects.all()}
    for location_name, count in _counts():
        counts[location_name] = count
    return counts


def _counts():
    from django.db.models import Count

    rows = Instance.objects.values("storage_location__name").annotate(n=Count("pk"))
    return [(row["storage_location__name"], row["n"]) for row in rows]


def verify_storage(on_progress=lambda n: None) -> Iterator[StorageProblem]:
    """Walk the index in primary-key order, in batches, and check each file against it,
    whichever location holds it."""
    yield from location_problems()
    last_pk = 0
    while True:
        rows = list(
            Instance.objects.filter(pk__gt=last_pk)
            .order_by("pk")
            .only("pk", "sop_instance_uid", "file_path", "file_size", "sha256", "storage_location_id")[:BATCH]
        )
        if not rows:
            return
        for instance in rows:
            problem = _check(instance)
            if problem:
                yield StorageProblem(instance.sop_instance_uid, storage.describe(instance), problem)
            on_progress(1)
        last_pk = rows[-1].pk


def _check(instance: Instance) -> str:
    try:
        if storage.stored_size(instance) != instance.file_size:
            return "size differs"
        sha256, _size = storage.stored_checksum(instance)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return "" if sha256 == instance.sha256 else "checksum differs"
