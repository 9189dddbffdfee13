"""Frames of a stored instance for WADO-RS (PS3.18 8.7.3.5.3, Table 8.7.3-2): as stored
(compressed bytes of each frame, with their image/* media type) when the client accepts the
stored transfer syntax (`transfer-syntax=*` or the stored one), else decoded to native pixels
(application/octet-stream, Explicit VR Little Endian), the default.

Only what a frame needs is read from the stored file: the header up to the Pixel Data element
(values of elements other than the image pixel module's are skipped by seeking), then for native
pixels the frame's byte range, for encapsulated ones the Basic or Extended Offset Table, or the
fragment items' headers when there is neither, and the frame's fragments (pydicom.encaps.get_frame).
One frame of a 500-frame 512x512 16-bit instance (262 MB) costs 0.5 MB of reading and memory
instead of the whole file (docs/benchmarks.md). A deflated file cannot be seeked into: it is
inflated whole, as before.
"""

import copy
import struct
from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from .. import storage
from ..humanize import count
from ..models import Instance

NATIVE = "1.2.840.10008.1.2.1"
OCTET = "application/octet-stream"
# The media type of a frame in each compressed transfer syntax.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


class FrameError(Exception):
    """Frames that cannot be given: `status` is the HTTP status, the message the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass
class Frame:
    media_type: str  # the part's Content-Type, with its transfer-syntax
    data: bytes


def parse_frame_list(text: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5] (1-based, as in the URL); a 400 for anything else."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise FrameError(400, f"frame list {text[:40]!r} is not a comma-separated list of numbers") from None
    if not numbers or any(n < 1 for n in numbers) or len(numbers) > 10000:
        raise FrameError(400, "frame numbers start at 1")
    return numbers


def stored_media_type(syntax: str) -> str:
    return FRAME_MEDIA_TYPES.get(syntax, OCTET)


# Read with the header: the image pixel module, the frame count and the Extended Offset Table.
PIXEL_TAGS = [0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011, 0x00280100,
              0x00280101, 0x00280102, 0x00280103, 0x7FE00001, 0x7FE00002]
PIXEL_DATA_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # Pixel Data, Float and Double Float Pixel Data
UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass
class PixelLocation:
    """Where the pixel data value lies in a stored file, found by reading its header only."""

    header: Dataset  # the PIXEL_TAGS elements, with the file meta
    syntax: UID
    value_offset: int  # the value's first byte: the Basic Offset Table's item when encapsulated
    length: int  # UNDEFINED_LENGTH when encapsulated
    count: int

    @property
    def encapsulated(self) -> bool:
        return self.length == UNDEFINED_LENGTH

    def extended_offsets(self) -> tuple[bytes, bytes] | None:
        offsets, lengths = self.header.get(0x7FE00001), self.header.get(0x7FE00002)
        if offsets is None or lengths is None or not offsets.value or not lengths.value:
            return None
        return offsets.value, lengths.value


def locate_pixel_data(f, syntax: UID) -> PixelLocation:
    """Walk the header of the open stored file `f` up to its pixel data element, and read
    that element's tag and length; 404 when there is none."""
    header = dcmread(f, stop_before_pixels=True, specific_tags=PIXEL_TAGS)
    start = f.tell()  # pydicom stops at the first byte of the pixel data element
    order = "<" if syntax.is_little_endian else ">"
    tag = f.read(8)
    if len(tag) < 8:
        raise FrameError(404, "this instance has no pixel data")
    group, element = struct.unpack(order + "HH", tag[:4])
    if (group << 16 | element) not in PIXEL_DATA_TAGS:
        raise FrameError(404, "this instance has no pixel data")
    if syntax.is_implicit_VR:
        (length,), value_offset = struct.unpack(order + "L", tag[4:]), start + 8
    else:  # OB, OW, OF, OD: always the 4-byte length after two reserved bytes
        (length,), value_offset = struct.unpack(order + "L", f.read(4)), start + 12
    frames = max(int(header.get("NumberOfFrames") or 1), 1)
    return PixelLocation(header, syntax, value_offset, length, frames)


def frames(instance: Instance, numbers: list[int], as_stored: bool) -> list[Frame]:
    """The asked frames, as stored or decoded to native pixels."""
    syntax = UID(instance.transfer_syntax_uid)
    try:
        with storage.open_stored(instance) as f:
            if syntax.is_deflated:
                return _inflated_frames(f, numbers)
            where = locate_pixel_data(f, syntax)
            if max(numbers) > where.count:
                raise FrameError(404, f"this instance has {count(where.count, 'frame', 'frames')}")
            # Unbuffered from here: walking fragment items reads 8 bytes each, not a buffer's 8 kB.
            unbuffered = getattr(f, "raw", f)
            return [_frame(unbuffered, where, n - 1, as_stored) for n in numbers]
    except FileNotFoundError:
        raise FrameError(404, "the stored file is missing") from None
    except FrameError:
        raise
    except Exception as error:
        raise FrameError(500, f"the stored file cannot be read: {error}") from None


def _frame(f, where: PixelLocation, index: int, as_stored: bool) -> Frame:
    native = f"{OCTET}; transfer-syntax={NATIVE}"
    if where.encapsulated:
        f.seek(where.value_offset)
        encoded = get_frame(f, index, extended_offsets=where.extended_offsets(), number_of_frames=where.count)
        if as_stored:
            return Frame(f"{stored_media_type(where.syntax)}; transfer-syntax={where.syntax}", encoded)
        return Frame(native, _decoded_one(where, encoded))
    if where.syntax.is_little_endian and int(where.header.get("BitsAllocated", 16)) != 1:
        size = where.length // where.count
        f.seek(where.value_offset + index * size)
        return Frame(native, f.read(size))
    # Packed bits (frames need not start on a byte) or big endian: pydicom reads the one frame.
    f.seek(0)
    return Frame(native, _little_endian_bytes(pixel_array(f, index=index, raw=True)))


def _decoded_one(where: PixelLocation, encoded: bytes) -> bytes:
    """One compressed frame decoded, with the stored header's pixel description."""
    ds = copy.copy(where.header)
    for tag in (0x7FE00001, 0x7FE00002):  # offsets of the whole file, not of this one frame
        ds.pop(tag, None)
    ds.NumberOfFrames = 1
    ds.PixelData = encapsulate([encoded])
    try:
        return _little_endian_bytes(pixel_array(ds, raw=True))
    except Exception as error:
        raise FrameError(406, f"the frames cannot be decoded from {where.syntax}: {error}") from None


def _inflated_frames(f, numbers: list[int]) -> list[Frame]:
    ds = dcmread(f)
    if "PixelData" not in ds:
        raise FrameError(404, "this instance has no pixel data")
    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    if max(numbers) > frames:
        raise FrameError(404, f"this instance has {count(frames, 'frame', 'frames')}")
    return [Frame(f"{OCTET}; transfer-syntax={NATIVE}", _little_endian_bytes(pixel_array(ds, index=n - 1, raw=True)))
            for n in numbers]


def _little_endian_bytes(array) -> bytes:
    """A decoded frame's pixels (YCbCr left as decoded, not converted), little endian."""
    if array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array).tobytes()
