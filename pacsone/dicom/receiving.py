"""The file a C-STORE's data set is written to as it arrives, which also reads its header early.

The header (everything before the pixel data) is in the first kilobytes of the data set. It is
parsed from memory as soon as those have arrived, while the sender is still pushing the pixel
data into the socket, instead of being read back from the file after the last fragment: that
takes the parse off the path between the last byte received and our answer. The ingest then
takes this header instead of reading the file (`ingest_file(header=...)`); when the early parse
cannot be trusted (the header is longer than what was kept, a deflated data set, a parse error)
there is no early header and the ingest reads the file as it does for any other file. The header's
DICOM JSON (what the index row keeps) is built here too, from the raw elements, which also checks
that every element converts.
"""

import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from ..dataset_structure import Truncated, check_head
from ..header_json import instance_header_json
from ..storage import IncomingFile
from .net.file_meta import PREAMBLE, file_meta, file_meta_bytes

HEAD_BYTES = 64 * 1024  # a header longer than this (large private blocks) is read from the file
PIXEL_DATA_TAGS = {0x7FE00010, 0x7FE00009, 0x7FE00008}
KEY_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


class _Head(BytesIO):
    """Knows whether a read ran past the end of what was kept."""

    ran_short = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and size > 0 and len(data) < size:
            self.ran_short = True
        return data


def _at_pixel_data(tag, _vr, _length) -> bool:
    return tag in PIXEL_DATA_TAGS


@dataclass
class EarlyHeader:
    dataset: Dataset  # up to the pixel data
    json: dict  # instance_header_json(dataset)
    # Where the plain walk stopped (the pixel data's element): every element before it has its
    # whole value inside the data set's first bytes, so a truncation check may start there. 0
    # when pydicom's reader parsed the header (a check then walks it all).
    walked_to: int = 0


_ELEMENT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHL")
_LONG_LENGTH = struct.Struct("<L")
_SHORT_LENGTH_VRS = {vr: vr.decode() for vr in (
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
    b"ST", b"TM", b"UI", b"UL", b"US")}
_LONG_LENGTH_VRS = {vr: vr.decode() for vr in (
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")}
UNDEFINED_LENGTH = 0xFFFFFFFF
# RawDataElement's fields after is_little_endian (is_raw, is_buffered), as its own defaults
_RAW_DEFAULTS = tuple(RawDataElement._field_defaults[name] for name in RawDataElement._fields[7:])


def _raw_elements(head: bytes, implicit_vr: bool, complete: bool) -> tuple[dict, int] | None:
    """The top-level elements before the pixel data, as pydicom's reader yields them (raw,
    converted on access), walked with `struct` over the bytes in memory: a quarter of the CPU of
    pydicom's file-like reading; and where the walk stopped (the pixel data's element, or the
    end). None when this plain walk does not suffice and pydicom reads: an undefined length
    (sequences and items of undefined length), an unknown VR, an item delimiter, bytes that end
    inside an element, or before the pixel data unless `complete`."""
    elements = {}
    position, end = 0, len(head)
    new_element = tuple.__new__  # RawDataElement's own __new__ is a Python function: one call less per element
    while True:
        if position == end and complete:
            return elements, position  # a data set without pixel data (a report, a presentation state)
        if position + 8 > end:
            return None  # cut inside an element header, or not yet at the pixel data
        if implicit_vr:
            group, element, length = _IMPLICIT_HEADER.unpack_from(head, position)
            vr, value_at = None, position + 8
        else:
            group, element, vr_bytes, length = _ELEMENT_HEADER.unpack_from(head, position)
            vr = _SHORT_LENGTH_VRS.get(vr_bytes)
            value_at = position + 8
            if vr is None:
                vr = _LONG_LENGTH_VRS.get(vr_bytes)
                if vr is None or position + 12 > end:
                    return None
                (length,) = _LONG_LENGTH.unpack_from(head, position + 8)
                value_at = position + 12
        tag = group << 16 | element
        if tag in PIXEL_DATA_TAGS:
            return elements, position
        if length == UNDEFINED_LENGTH or group == 0xFFFE or value_at + length > end:
            return None
        value = head[value_at:value_at + length] if length else empty_value_for_VR(vr, raw=True)
        key = BaseTag(tag)
        elements[key] = new_element(RawDataElement, (key, vr, length, value, value_at, implicit_vr, True, *_RAW_DEFAULTS))
        position = value_at + length


def _dataset(elements: dict, implicit_vr: bool) -> Dataset:
    """A Dataset of raw elements with the character set of its (0008,0005), as read_dataset makes it."""
    ds = Dataset(elements)
    encoding = default_encoding
    if 0x00080005 in elements:
        encoding = convert_encodings(convert_raw_data_element(elements[0x00080005]).value)
    ds.set_original_encoding(implicit_vr, True, encoding)
    return ds


def early_header(head: bytes, transfer_syntax: UID, complete: bool) -> EarlyHeader | None:
    """The data set up to its pixel data, parsed from its first bytes, and its DICOM JSON; None
    when unsure. `complete`: `head` is the whole data set (so running out of bytes is its end)."""
    if transfer_syntax.is_deflated or not transfer_syntax.is_little_endian:
        return None
    implicit_vr = transfer_syntax.is_implicit_VR
    walked_to = 0
    try:
        walked = _raw_elements(head, implicit_vr, complete)
        ds = _dataset(walked[0], implicit_vr) if walked is not None else None
        walked_to = walked[1] if walked is not None else 0
    except Exception:
        ds = None
    if ds is None:  # pydicom's reader, for what the plain walk leaves to it
        walked_to = 0
        fp = _Head(head)
        try:
            ds = read_dataset(fp, implicit_vr, True, stop_when=_at_pixel_data)
        except Exception:
            return None
        if fp.ran_short and not complete:
            return None
    if not any(keyword in ds for keyword in KEY_UIDS):
        return None  # garbage that parsed as a few elements: the ingest's own reading judges it
    try:
        # _dataset() and read_dataset have set the original character set from (0008,0005), as the Python
        # codecs pydicom decodes with; only the encoding flags are ours to set. (Passing the raw
        # "ISO_IR 192" here made every later text conversion fail: "Unknown encoding".)
        ds.set_original_encoding(transfer_syntax.is_implicit_VR, True)
        # Strict: a malformed element raises here (the ingest's own reading of the file judges it)
        # instead of later, in whoever reads it.
        json = instance_header_json(ds, strict=True)
    except Exception:
        return None
    return EarlyHeader(ds, json, walked_to)


def header_from_head(head: bytes, transfer_syntax: UID, complete: bool) -> Dataset | None:
    """early_header()'s data set."""
    early = early_header(head, transfer_syntax, complete)
    return early.dataset if early is not None else None


class ReceivedFile(IncomingFile):
    """A received data set's temp file: preamble and File Meta Information first, then the data
    set's fragments; keeps the first HEAD_BYTES of the data set to parse its header early and,
    once complete, to check that no element runs past its end (when those bytes suffice: the
    ingest then need not walk the file again)."""

    SUFFIX = ".dcm"

    def __init__(self, folder: Path, sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str = "",
                 opened: tuple[str, int] | None = None):
        super().__init__(folder, self.SUFFIX, opened)
        # (the accepted context's UID as it is: a new UID is validated by a regex, ~20 µs)
        self.transfer_syntax = transfer_syntax if isinstance(transfer_syntax, UID) else UID(transfer_syntax)
        self.sop_class, self.sop_instance = sop_class, sop_instance
        self.source_ae = source_ae.strip()
        self._head = bytearray()
        self._header_tried = False
        self.header: Dataset | None = None
        self.header_json: dict | None = None
        self._walked_to = 0  # EarlyHeader.walked_to
        super().write(PREAMBLE + file_meta_bytes(sop_class, sop_instance, transfer_syntax, self.source_ae))
        # As pydicom reads them back from the file (a UI value without its padding).
        self.file_meta_values = {"MediaStorageSOPClassUID": sop_class.rstrip("\0 ").strip(),
                                 "MediaStorageSOPInstanceUID": sop_instance.rstrip("\0 ").strip(),
                                 "TransferSyntaxUID": str(transfer_syntax).rstrip("\0 ").strip()}
        self._data_set_start = self.size

    def write(self, data) -> int:
        if len(self._head) < HEAD_BYTES:
            self._head += data[:HEAD_BYTES - len(self._head)]
            if len(self._head) >= HEAD_BYTES and not self._header_tried:
                self._parse_head(complete=False)
        return super().write(data)

    def finish(self) -> None:
        """The last fragment has arrived."""
        if not self._header_tried:
            self._parse_head(complete=True)
        self._check_structure()
        self._head = bytearray()

    def _check_structure(self) -> None:
        syntax = self.transfer_syntax
        if not syntax.is_transfer_syntax or syntax.is_deflated:
            return  # as the ingest: not walked
        try:
            self.checked_whole = check_head(bytes(self._head), self.size - self._data_set_start, syntax.is_implicit_VR,
                                            syntax.is_little_endian, start=self._walked_to)
        except Truncated as truncated:
            self.truncation = truncated

    def _parse_head(self, complete: bool) -> None:
        self._header_tried = True
        early = early_header(bytes(self._head), self.transfer_syntax, complete)
        if early is not None:
            early.dataset.file_meta = file_meta(self.sop_class, self.sop_instance, self.transfer_syntax,
                                                self.source_ae)
            self.header, self.header_json, self._walked_to = early.dataset, early.json, early.walked_to
