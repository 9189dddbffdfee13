"""Frames of a stored instance for WADO-RS (PS3.18 8.7.3.5.3, Table 8.7.3-2): as stored
(compressed bytes of each frame, with their image/* media type) when the client accepts the
stored transfer syntax (`transfer-syntax=*` or the stored one), else decoded to native pixels
(application/octet-stream, Explicit VR Little Endian), the default."""

from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from .. import storage
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


def frames(instance: Instance, numbers: list[int], as_stored: bool) -> list[Frame]:
    """The asked frames, as stored or decoded to native pixels."""
    try:
        with storage.open_stored(instance) as f:
            ds = dcmread(f)
    except FileNotFoundError:
        raise FrameError(404, "the stored file is missing") from None
    except Exception as error:
        raise FrameError(500, f"the stored file cannot be read: {error}") from None
    if "PixelData" not in ds:
        raise FrameError(404, "this instance has no pixel data")
    count = max(int(ds.get("NumberOfFrames") or 1), 1)
    if max(numbers) > count:
        raise FrameError(404, f"this instance has {count} frame(s)")
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if as_stored and syntax.is_compressed:
        stored = list(generate_frames(ds.PixelData, number_of_frames=count))
        media = f"{stored_media_type(syntax)}; transfer-syntax={syntax}"
        return [Frame(media, stored[n - 1]) for n in numbers]
    if not syntax.is_compressed and syntax.is_little_endian and not syntax.is_deflated:
        return [Frame(f"{OCTET}; transfer-syntax={NATIVE}", _native_frame(ds, n - 1, count)) for n in numbers]
    try:
        return [Frame(f"{OCTET}; transfer-syntax={NATIVE}", _decoded_frame(ds, n - 1)) for n in numbers]
    except Exception as error:
        raise FrameError(406, f"the frames cannot be decoded from {syntax}: {error}") from None


def _native_frame(ds, index: int, count: int) -> bytes:
    data = ds.PixelData
    size = len(data) // count
    bits = int(ds.get("BitsAllocated", 16))
    if bits == 1:  # packed bits: frames need not start on a byte
        return _decoded_frame(ds, index)
    return bytes(data[index * size:(index + 1) * size])


def _decoded_frame(ds, index: int) -> bytes:
    """One frame decoded (YCbCr left as decoded, not converted), little endian."""
    array = pixel_array(ds, index=index, raw=True)
    if array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array).tobytes()
