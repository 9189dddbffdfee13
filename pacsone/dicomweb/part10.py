"""A stored instance as a Part 10 file in the transfer syntax a client asked for: the file as it
is when it already has that syntax, else re-encoded by the retrieve code's transcoder
(pacsone/dicom/net/transcoding.py: uncompressed targets, one frame decoded at a time), behind
a new preamble and file meta. Compressed targets other than the stored one are not produced
(pydicom cannot encode most of them): such a request is answered 406 (single instance) or
the instance is left out of a multi-instance answer, with a Warning header."""

import io

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from .. import storage
from ..dicom.net import transcoding
from ..dicom.net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from ..models import Instance

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ANY = "*"
COPY_CHUNK = 1 << 20


class NotAvailable(Exception):
    """This instance cannot be given in the asked transfer syntax; the message says why."""


def can_give(stored: str, asked: str) -> bool:
    """Can a file stored in `stored` be given in `asked` ("*": as stored)?"""
    if asked in (ANY, stored):
        return True
    target = UID(asked)
    return target.is_transfer_syntax and not target.is_compressed and not target.is_deflated


def given_syntax(instance: Instance, asked: str) -> str:
    return instance.transfer_syntax_uid if asked in (ANY, instance.transfer_syntax_uid) else asked


def _file_chunks(instance: Instance):
    with storage.open_stored(instance) as f:
        while chunk := f.read(COPY_CHUNK):
            yield chunk


def _meta(instance: Instance, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = instance.sop_class_uid
    meta.MediaStorageSOPInstanceUID = instance.sop_instance_uid
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    return out.getvalue()


def instance_chunks(instance: Instance, asked: str):
    """The instance as a Part 10 file in `asked` ("*": as stored), as an iterator of bytes.
    Raises NotAvailable before anything is produced when it cannot be given so."""
    syntax = given_syntax(instance, asked)
    if syntax == instance.transfer_syntax_uid:
        if not storage.stored_exists(instance):
            raise NotAvailable("the stored file is missing")
        return _file_chunks(instance)
    if not can_give(instance.transfer_syntax_uid, syntax):
        raise NotAvailable(f"cannot convert {instance.transfer_syntax_uid} to {syntax}")
    try:
        body = transcoding.uncompressed_chunks(lambda: storage.open_stored(instance), UID(syntax))
    except transcoding.Untranscodable as error:
        raise NotAvailable(str(error)) from None
    return _prefixed(_meta(instance, syntax), body)


def _prefixed(first: bytes, rest):
    yield first
    yield from rest
