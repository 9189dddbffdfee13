"""Checking that every indexed file is still present and intact (`verifystorage`)."""

from dataclasses import dataclass
from typing import Iterator

from . import storage
from .models import Instance

BATCH = 2000


@dataclass
class StorageProblem:
    sop_instance_uid: str
    path: str
    problem: str  # "missing", "size differs", "checksum differs", "unreadable: ..."


def indexed_files_count() -> int:
    return Instance.objects.count()


def verify_storage(on_progress=lambda n: None) -> Iterator[StorageProblem]:
    """Walk the index in primary-key order, in batches, and check each file against it."""
    last_pk = 0
    while True:
        rows = list(
            Instance.objects.filter(pk__gt=last_pk)
            .select_related("storage_location")
            .order_by("pk")
            .only("pk", "sop_instance_uid", "file_path", "file_size", "sha256", "storage_location")[:BATCH]
        )
        if not rows:
            return
        for instance in rows:
            path = storage.absolute_path(instance.storage_location, instance.file_path)
            problem = _check(path, instance)
            if problem:
                yield StorageProblem(instance.sop_instance_uid, str(path), problem)
            on_progress(1)
        last_pk = rows[-1].pk


def _check(path, instance: Instance) -> str:
    try:
        if path.stat().st_size != instance.file_size:
            return "size differs"
        sha256, _size = storage.checksum(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return "" if sha256 == instance.sha256 else "checksum differs"
