"""A stored file's data set re-encoded in an uncompressed transfer syntax, as a stream of buffers,
for a retrieve peer that did not accept the stored syntax.

Reading the whole file and decompressing it in one piece held the file, the decoded pixels and
their encoding in memory at once (+411 MB for one 200 MB instance). Here the header (everything
before Pixel Data) is read and encoded as a small data set; the pixel data follows a piece at a
time: native pixel data is copied from the file 1 MB at a time, encapsulated pixel data is
decoded one frame at a time (pydicom's decoders read each frame's fragments from the file).
Memory is therefore bounded by one decoded frame (plus its compressed fragments and one PDU),
whatever the number of frames. Everything up to the first frame is done before the first
byte goes out, so an unreadable or undecodable file is refused cleanly (Untranscodable).

Elements after Pixel Data are kept for native pixel data; after encapsulated pixel data only
Data Set Trailing Padding or Digital Signatures can follow, and neither survives a re-encoding
(pydicom's own decompress() would carry signatures that no longer verify), so they are dropped.
Big endian and deflated stored files (retired or rare) are decoded whole by pydicom.
"""

import struct
from typing import BinaryIO, Callable, Iterator

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode

COPY_CHUNK_BYTES = 1 << 20
PIXEL_DATA_TAG = 0x7FE00010
ENCAPSULATED_ONLY = (0x7FE00001, 0x7FE00002)  # Extended Offset Table and its lengths
UNDEFINED_LENGTH = 0xFFFFFFFF


class Untranscodable(Exception):
    """This stored file cannot be re-encoded in the asked transfer syntax."""


def _encoded(ds: Dataset, target: UID) -> bytes:
    data = encode(ds, target.is_implicit_VR, target.is_little_endian, target.is_deflated)
    if data is None:
        raise Untranscodable("cannot encode the data set")
    return data


def _pixel_header(target: UID, vr: bytes, length: int) -> bytes:
    if target.is_implicit_VR:
        return struct.pack("<HHL", 0x7FE0, 0x0010, length)
    return struct.pack("<HH2sHL", 0x7FE0, 0x0010, vr, 0, length)


def _read_pixel_element_header(f: BinaryIO, source: UID) -> tuple[bytes, int] | None:
    """(VR, value length) of the Pixel Data element at the file's position; None when the
    data set ends here or goes on with another element (Float Pixel Data and the like)."""
    head = f.read(8)
    if len(head) < 8:
        return None
    group, element = struct.unpack_from("<HH", head)
    if (group << 16 | element) != PIXEL_DATA_TAG:
        return None
    if source.is_implicit_VR:
        return b"", struct.unpack_from("<L", head, 4)[0]
    vr = head[4:6]
    if vr not in (b"OB", b"OW", b"UN"):
        raise Untranscodable(f"Pixel Data has VR {vr!r}")
    tail = f.read(4)
    if len(tail) < 4:
        raise Untranscodable("the file ends inside the Pixel Data element")
    return vr, struct.unpack("<L", tail)[0]


def uncompressed_chunks(open_file: Callable[[], BinaryIO], target: UID) -> Iterator:
    """The data set of the stored file that `open_file()` opens, in the uncompressed syntax
    `target`, as buffers. Raises Untranscodable before returning when the file cannot be sent."""
    try:
        f = open_file()
    except OSError as error:
        raise Untranscodable(f"cannot read the stored file: {error}") from None
    try:
        try:
            header = dcmread(f, stop_before_pixels=True)
            source = UID(header.file_meta.TransferSyntaxUID)
        except Exception as error:
            raise Untranscodable(f"cannot read the stored file: {error}") from None
        if not (source.is_little_endian and target.is_little_endian) or source.is_deflated or target.is_deflated:
            return iter([_whole_file(f, source, target)])
        position = f.tell()
        element = _read_pixel_element_header(f, source)
        if element is None:
            f.seek(position)
            rest = read_dataset(f, source.is_implicit_VR, True)
            f.close()
            header.update(rest)
            return iter([_encoded(header, target)])
        vr, length = element
        if source.is_compressed:
            return _decoded_frames(f, header, source, target, vr)
        if length == UNDEFINED_LENGTH:
            raise Untranscodable("native Pixel Data of undefined length")
        return _native_pixels(f, header, source, target, vr, length)
    except BaseException:
        f.close()
        raise


def _whole_file(f: BinaryIO, source: UID, target: UID) -> bytes:
    try:
        f.seek(0)
        ds = dcmread(f)
        if source.is_compressed:
            ds.decompress(generate_instance_uid=False)
    except Exception as error:
        raise Untranscodable(f"cannot decode {source}: {error}") from None
    finally:
        f.close()
    return _encoded(ds, target)


def _native_pixels(f: BinaryIO, header: Dataset, source: UID, target: UID, vr: bytes, length: int) -> Iterator:
    start = f.tell()
    f.seek(start + length)
    try:
        trailing = read_dataset(f, source.is_implicit_VR, True)  # small: padding, signatures
    except Exception as error:
        raise Untranscodable(f"cannot read the elements after Pixel Data: {error}") from None
    vr = vr or (b"OB" if header.get("BitsAllocated", 16) <= 8 else b"OW")
    return _native_stream(f, header, target, vr, start, length, trailing)


def _native_stream(f, header, target, vr, start, length, trailing) -> Iterator:
    with f:
        yield _encoded(header, target)
        yield _pixel_header(target, vr, length)
        f.seek(start)
        remaining = length
        while remaining:
            chunk = f.read(min(COPY_CHUNK_BYTES, remaining))
            if not chunk:
                raise OSError("the stored file ends inside its Pixel Data")
            remaining -= len(chunk)
            yield chunk
        if len(trailing):
            yield _encoded(trailing, target)


def _decoded_frames(f: BinaryIO, header: Dataset, source: UID, target: UID, stored_vr: bytes) -> Iterator:
    """Decode the first frame now (so that a failure refuses the instance before anything is
    sent), then stream it and the others one by one."""
    from pydicom.pixels import get_decoder
    from pydicom.pixels.utils import as_pixel_options

    try:
        decoder = get_decoder(source)
        options = as_pixel_options(header, transfer_syntax_uid=source, pixel_keyword="PixelData")
        if stored_vr:
            options["pixel_vr"] = stored_vr.decode("ascii")
        frames = decoder.iter_array(f, validate=True, as_rgb=True, **options)
        first, image_pixel = next(frames)
    except Exception as error:
        raise Untranscodable(f"cannot decompress {source}: {error}") from None
    count = options["number_of_frames"]
    frame_bytes = first.nbytes
    length = frame_bytes * count
    if length >= UNDEFINED_LENGTH - 1:
        raise Untranscodable("the decompressed Pixel Data would be longer than a DICOM element may be")
    for tag in ENCAPSULATED_ONLY:
        header.pop(tag, None)
    header.PhotometricInterpretation = image_pixel["photometric_interpretation"]
    if image_pixel["samples_per_pixel"] > 1:
        header.PlanarConfiguration = image_pixel["planar_configuration"]
    if "NumberOfFrames" in header or count > 1:
        header.NumberOfFrames = count
    vr = b"OB" if header.BitsAllocated <= 8 else b"OW"
    return _frame_stream(f, frames, first, header, target, vr, frame_bytes, length)


def _frame_stream(f, frames, first, header, target, vr, frame_bytes, length) -> Iterator:
    with f:
        yield _encoded(header, target)
        yield _pixel_header(target, vr, length + length % 2)
        yield _raw_bytes(first)
        del first
        for array, _ in frames:
            if array.nbytes != frame_bytes:
                raise Untranscodable("frames of different sizes")
            yield _raw_bytes(array)
        if length % 2:
            yield b"\0"


def _raw_bytes(array) -> memoryview:
    """The frame's bytes as tobytes() would give them (what pydicom's decompress() stores),
    without a copy when the array is contiguous."""
    import numpy

    return memoryview(numpy.ascontiguousarray(array)).cast("B")
