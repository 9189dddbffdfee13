"""The one place DICOMweb reads stored files from (pacsone/storage.py decides where they are)."""

from pathlib import Path

from .. import storage
from ..models import Instance


def stored_path(instance: Instance) -> Path:
    """The stored file of an instance (its storage location must be loaded or loadable)."""
    return storage.absolute_path(instance.storage_location, instance.file_path)


def open_stored(instance: Instance):
    """The stored file of an instance, open for reading in binary."""
    return open(stored_path(instance), "rb")
