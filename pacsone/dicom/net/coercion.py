"""A stored instance sent with some attributes replaced (coerced at send time): the patient's
demographics changed by HL7 ADT (hl7/coercion.py decides which) go out with C-MOVE and C-GET,
while the stored file stays as it was received.

When the peer takes the stored transfer syntax (not deflated), only the header (everything
before Pixel Data) is read, changed and encoded again; the rest of the file follows as stored, a
megabyte at a time, so memory stays flat whatever the file's size. Otherwise the whole data set
is decoded (decompressed if needed), changed and encoded in the peer's syntax.
Text that the stored Specific Character Set cannot hold switches the data set to ISO_IR 192.
"""

from typing import BinaryIO, Callable, Iterator

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID

from ..charsets import make_room_for

COPY_CHUNK_BYTES = 1 << 20


class Uncoercible(Exception):
    """The stored file cannot be read or re-encoded."""


def _apply(ds: Dataset, values: dict[str, str]) -> None:
    make_room_for(ds, [value for value in values.values() if value])
    for keyword, value in values.items():
        if value or keyword in ds:
            setattr(ds, keyword, value)


def _encoded(ds: Dataset, target: UID) -> bytes:
    ds = Dataset(ds)  # without its file meta information
    buffer = DicomBytesIO()
    buffer.is_little_endian = target.is_little_endian
    buffer.is_implicit_VR = target.is_implicit_VR
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _tail(open_file: Callable[[], BinaryIO], position: int) -> Iterator[bytes]:
    with open_file() as f:
        f.seek(position)
        while chunk := f.read(COPY_CHUNK_BYTES):
            yield chunk


def coerced_chunks(open_file: Callable[[], BinaryIO], stored: UID, target: UID,
                   values: dict[str, str]) -> Iterator[bytes]:
    """The data set of the stored file that `open_file()` opens, in `target` with `values` (keyword -> value) set, as
    buffers. Raises Uncoercible before returning when it cannot be sent."""
    stored, target = UID(stored), UID(target)
    try:
        if target == stored and not stored.is_deflated:
            with open_file() as f:
                header = dcmread(f, stop_before_pixels=True)
                position = f.tell()  # where Pixel Data (or the end of the file) begins
            header.set_original_encoding(stored.is_implicit_VR, stored.is_little_endian, header.get("SpecificCharacterSet"))
            _apply(header, values)
            return _joined(_encoded(header, target), open_file, position)
        with open_file() as f:
            ds = dcmread(f)
        if stored.is_compressed and not target.is_compressed:
            ds.decompress(generate_instance_uid=False)
        _apply(ds, values)
        return iter([_encoded(ds, target)])
    except Exception as error:
        raise Uncoercible(f"cannot send the stored file with the changed attributes: {error}") from None


def _joined(first: bytes, open_file: Callable[[], BinaryIO], position: int) -> Iterator[bytes]:
    yield first
    yield from _tail(open_file, position)
