"""DICOM JSON (PS3.18 Annex F) of an instance's header, fast: what `Instance.header` holds.

pydicom's `Dataset.to_json_dict()` first turns every raw element into a DataElement (value
conversion, validation, MultiValue, UID and IS/DS objects) and then into JSON: about 60 µs per
element, several milliseconds per image, on the SCP's critical path. Most header elements are
plain ASCII strings and binary numbers, whose DICOM JSON can be built straight from the raw
bytes. `header_json()` does that for those, and hands every other element (sequences, person
names with several components, binary VRs, AT, non-ASCII or ISO 2022 text, implicit-VR
ambiguities, anything unusual) to pydicom, element by element. The result is the same JSON as
pydicom's: tests/pacsone/test_header_json.py compares both on every pydicom test file.
"""

import logging
import re
import struct
from typing import Callable

from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

# Characters sets in which printable ASCII bytes decode as ASCII, without escape sequences.
ASCII_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"}
STRING_VRS = {"AE", "AS", "CS", "DA", "DT", "TM", "UI"}  # pydicom decodes these as ASCII
TEXT_VRS = {"SH", "LO", "UC"}  # multi-valued text: decoded with the character set
SINGLE_TEXT_VRS = {"LT", "ST", "UT"}  # one value, backslashes are text
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
PRINTABLE = re.compile(rb"[\x20-\x7e\x00]*\Z")
INTEGER = re.compile(r"[+-]?[0-9]+\Z")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
UNDEFINED_LENGTH = 0xFFFFFFFF
CHARSET_TAG = 0x00080005
BULK_DATA_THRESHOLD = 1024  # a longer binary value is stored as a reference, not inline


class _Fallback(Exception):
    """This element needs pydicom's conversion."""


def instance_header_json(ds: Dataset, strict: bool = False) -> dict:
    """What `Instance.header` holds: the header's DICOM JSON, bulk data replaced by a reference."""
    return header_json(ds, BULK_DATA_THRESHOLD, _bulk_data_reference, strict)


def _bulk_data_reference(element) -> str:
    return f"bulkdata:{element.tag:08X}"


def header_json(
    ds: Dataset, bulk_data_threshold: int, bulk_data_element_handler: Callable, strict: bool = False
) -> dict:
    """`ds.to_json_dict(bulk_data_threshold, bulk_data_element_handler,
    suppress_invalid_tags=True)`, computed from raw elements where that is exact.

    `strict`: an element that cannot be converted raises instead of being skipped. Every element
    is then known to convert: those taken from raw bytes were parsed whole here, the others by
    pydicom (so a strict call also checks a data set, at no more cost than building its JSON)."""
    ascii_text = _charset_is_ascii(ds)
    plain = not (config.datetime_conversion or config.use_DS_numpy or config.use_IS_numpy)
    memo = _memos[ascii_text]
    result = {}
    for tag, raw in ds._dict.items():  # ds.keys()'s order; the element too, in one lookup
        tag_number = int(tag)  # dict lookups by pydicom's BaseTag run its Python __eq__
        element = None
        if plain and isinstance(raw, RawDataElement):
            element = memo.json(raw, tag_number)
        if element is None:
            try:
                element = ds[tag].to_json_dict(bulk_data_element_handler, bulk_data_threshold)
            except Exception as exc:  # as pydicom's suppress_invalid_tags: skip the element
                if strict:
                    raise
                log.warning("Error while processing tag %08X: %s", tag, exc)
                continue
        result[_JSON_KEYS.get(tag_number) or _json_key(tag_number)] = element
    return result


_JSON_KEYS: dict[int, str] = {}  # the tags seen and their DICOM JSON keys


def _json_key(tag: int) -> str:
    """'00100010' for (0010,0010), kept (bounded as the memo is)."""
    if len(_JSON_KEYS) >= _Memo.MAX_ENTRIES:
        _JSON_KEYS.clear()
    text = _JSON_KEYS[tag] = f"{tag:08X}"
    return text


def _charset_is_ascii(ds: Dataset) -> bool:
    raw = ds._dict.get(CHARSET_TAG)
    if raw is None:
        return True
    value = raw.value if isinstance(raw, RawDataElement) else raw.value
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(value, str):  # several character sets (a MultiValue)
        return False
    return value.strip(" \0") in ASCII_CHARSETS


class _Memo:
    """Raw element -> its DICOM JSON, for the values that repeat from one instance to the next
    (most of a series' header: patient, study, series, equipment, geometry): a lookup instead
    of decoding and converting them again. The JSON it returns is shared between the headers
    that hold it, so nobody may change a header's JSON in place (the ingest only reads and stores
    it). Bounded: emptied when full (the values unique to each instance fill it). One per
    `ascii_text` (whether the data set's character set reads printable bytes as ASCII)."""

    MAX_ENTRIES = 20_000
    MAX_VALUE_BYTES = 256  # longer values are rarely repeated; they are converted each time

    def __init__(self, ascii_text: bool):
        self.ascii_text = ascii_text
        self._entries: dict[tuple, dict | None] = {}

    def json(self, raw: RawDataElement, tag: int) -> dict | None:
        """The element's JSON; None when pydicom must convert it. `tag`: raw.tag as a plain int
        (comparing pydicom's BaseTag on each hit would run its Python __eq__)."""
        value = raw.value
        if type(value) is not bytes or len(value) > self.MAX_VALUE_BYTES:
            return self._converted(raw)
        # (tag, VR, length, value) + (implicit VR, little endian): all but the value's position
        key = (tag, raw[1], raw[2], value, raw[5], raw[6])
        try:
            return self._entries[key]
        except KeyError:
            pass
        element = self._converted(raw)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = element
        return element

    def _converted(self, raw: RawDataElement) -> dict | None:
        try:
            return _raw_element_json(raw, self.ascii_text)
        except Exception:  # _Fallback, or a value that is not what its VR says
            return None


_memos = {True: _Memo(True), False: _Memo(False)}


def _raw_element_json(raw: RawDataElement, ascii_text: bool) -> dict:
    vr = raw.VR
    if vr is None or raw.is_implicit_VR:
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            raise _Fallback
    value = raw.value
    if value is None or raw.length == UNDEFINED_LENGTH:
        raise _Fallback
    if not value:
        if vr == "SQ":
            raise _Fallback
        return {"vr": vr}
    number_format = NUMBER_FORMATS.get(vr)
    if number_format is not None:
        return {"vr": vr, "Value": _numbers(value, number_format, raw.is_little_endian)}
    if vr in STRING_VRS or vr in TEXT_VRS or vr in SINGLE_TEXT_VRS or vr in ("IS", "DS", "PN"):
        if not PRINTABLE.match(value):
            raise _Fallback
        if not ascii_text and vr not in STRING_VRS and vr not in ("IS", "DS"):
            raise _Fallback
        return _text_json(vr, value.decode("ascii"))
    raise _Fallback


def _numbers(value: bytes, number_format: str, little_endian: bool) -> list:
    size = struct.calcsize("<" + number_format)
    if len(value) % size:
        raise _Fallback
    count = len(value) // size
    numbers = struct.unpack(f"{'<' if little_endian else '>'}{count}{number_format}", value)
    if number_format in "fd":
        return [float(n) for n in numbers]
    return list(numbers)


def _text_json(vr: str, text: str) -> dict:
    if vr in SINGLE_TEXT_VRS:
        text = text.rstrip("\0 ")
        return {"vr": vr, "Value": [text]} if text else {"vr": vr}
    if vr == "DS":
        text = text.strip()
    text = text.rstrip(" \0")
    if not text:
        return {"vr": vr}
    values = text.split("\\")
    if vr == "AE":
        values = [v.strip() for v in values]
    elif vr in TEXT_VRS or vr == "PN":
        values = [v.rstrip("\0 ") for v in values]
    if not all(values):  # empty values inside a multi-valued element: pydicom's rules apply
        raise _Fallback
    if vr == "IS":
        return {"vr": vr, "Value": [_integer(v) for v in values]}
    if vr == "DS":
        return {"vr": vr, "Value": [_decimal(v) for v in values]}
    if vr == "PN":
        if len(values) > 1 or "=" in values[0]:
            raise _Fallback
        return {"vr": vr, "Value": [{"Alphabetic": values[0]}]}
    return {"vr": vr, "Value": values}


def _integer(text: str) -> int:
    text = text.strip()
    if not INTEGER.match(text):
        raise _Fallback
    return int(text)


def _decimal(text: str) -> float:
    text = text.strip()
    if not DECIMAL.match(text):
        raise _Fallback
    return float(text)
