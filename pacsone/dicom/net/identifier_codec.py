"""C-FIND answer identifiers encoded to bytes without pydicom's Dataset, fast and exact.

pydicom builds a DataElement per value (conversion, validation, MultiValue, UID and IS
objects) and `write_dataset` then re-checks every element: about 0.5 ms of CPU per answer of ten
attributes (bench/find_answers.py), against 0.03 ms here. An answer identifier is a handful of short ASCII strings and numbers whose
encoding is simple; `encode()` writes them straight from plain Python values, byte for byte
what `pydicom.filewriter.write_dataset` writes for the equivalent Dataset (little endian,
implicit or explicit VR; tests/pacsone/test_identifier_codec.py compares both).

    encode(elements, explicit_vr: bool) -> bytes

`elements`: (tag, VR, value) triples in ascending tag order, `tag` an int such as 0x00100010.
The value is what one would give to `Dataset.add_new(tag, VR, value)`: None, "" or [] (empty),
a str (a backslash separates values), a list of str, an int (IS, US, UL, ...), a float or a
list of numbers (binary number VRs). A triple whose VR is None carries a whole element already
encoded (tag, VR, length and value: see `pydicom_element()`), for what only pydicom should write.
The Specific Character Set, when one of the elements is (0008,0005), decides how text VRs are
encoded, as in pydicom: ISO_IR 192 as UTF-8, the single-byte sets (ISO_IR 100 to 166, but not
ISO_IR 13) and GB18030/GBK with their codecs; with no character set, with code extensions (ISO
2022, several values) or with text a set cannot hold, that element goes to pydicom.

Anything the fast path does not handle exactly (non-ASCII where the character set is not one of
the above, DS, AT, binary and sequence values, unusual values, ambiguous VRs such
as "US or SS", values too long for an explicit VR length) is written by pydicom's own
`write_data_element`, element by element, from the DataElement that `add_new` would create;
`NotFast` is raised only for what must go through a whole Dataset (ambiguous VRs, which
`write_dataset` resolves from the other elements). Correctness never depends on the fast path.
"""

from functools import lru_cache
from struct import pack

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset

CHARSET_TAG = 0x00080005
# VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
LENGTH_32 = frozenset({"OB", "OD", "OF", "OL", "OW", "OV", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
# Text VRs that pydicom encodes with the Specific Character Set (the others with its default).
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
# VRs the fast path writes as text, space-padded (UI: stripped, NUL-padded).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UR", "IS", "UI"}) | TEXT_VRS
# Text in which pydicom never splits at backslashes.
SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT"})
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
# Python codecs of the character sets the fast path encodes non-ASCII text in: those in which
# pydicom writes a value as `value.encode(codec)` and ASCII text stays ASCII.
TEXT_CODECS = {
    "ISO_IR 192": "utf-8", "ISO_IR 100": "latin-1", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO_IR 126": "iso8859_7", "ISO_IR 127": "iso8859_6", "ISO_IR 138": "iso8859_8",
    "ISO_IR 144": "iso8859_5", "ISO_IR 148": "iso8859_9", "ISO_IR 166": "tis_620",
    "GB18030": "gb18030", "GBK": "gbk",
}
DEFAULT_ENCODING = "iso8859"  # pydicom.charset.default_encoding


class NotFast(ValueError):
    """This identifier must be encoded through a pydicom Dataset (`pydicom_encode`)."""


class _ElementFallback(Exception):
    """This element must be written by pydicom."""


@lru_cache(maxsize=4096)
def element_header(tag: int, vr: str, explicit_vr: bool) -> tuple[bytes, str]:
    """The tag (and VR) bytes of an element, and the struct format of its length."""
    tag_bytes = pack("<HH", tag >> 16, tag & 0xFFFF)
    if not explicit_vr:
        return tag_bytes, "<I"
    if vr in LENGTH_32:
        return tag_bytes + vr.encode("ascii") + b"\0\0", "<I"
    return tag_bytes + vr.encode("ascii"), "<H"


def value_bytes(vr: str, value, text_codec: str | None) -> bytes:
    """The padded value of an element; raises _ElementFallback for what pydicom must write."""
    if value is None or value == "" or value == []:
        return b""
    number_format = NUMBER_FORMATS.get(vr)
    if number_format is not None:
        try:
            if isinstance(value, list | tuple):
                return pack(f"<{len(value)}{number_format}", *value)
            return pack("<" + number_format, value)
        except Exception:
            raise _ElementFallback from None
    if vr not in STRING_VRS:
        raise _ElementFallback
    kind = type(value)
    if kind is list or kind is tuple:
        if len(value) == 1:
            return value_bytes(vr, value[0], text_codec)
        if vr in SINGLE_VALUE_VRS:
            raise _ElementFallback
        if vr == "IS":
            if not all(type(v) is int for v in value):
                raise _ElementFallback
            text = "\\".join(map(str, value))
        elif all(type(v) is str for v in value):
            text = "\\".join(value)
        else:
            raise _ElementFallback
    elif kind is str and vr != "IS":  # pydicom validates and strips IS strings
        text = value
    elif kind is int and vr == "IS":
        text = str(value)
    else:
        raise _ElementFallback
    if vr == "UI":
        text = "\\".join(v.strip() for v in text.split("\\")) if "\\" in text else text.strip()
        data = text.encode("ascii") if text.isascii() else _element_fallback()
        return data + b"\0" if len(data) % 2 else data
    if vr == "PN" and "=" in text:  # pydicom drops the empty component groups at the end
        text = "\\".join(name.rstrip("=") for name in text.split("\\"))
    if text.isascii():
        data = text.encode("ascii")
    elif text_codec is not None and vr in TEXT_VRS:
        try:
            data = text.encode(text_codec)
        except UnicodeError:  # pydicom replaces what the character set cannot hold
            raise _ElementFallback from None
    else:
        raise _ElementFallback
    return data + b" " if len(data) % 2 else data


def _element_fallback():
    raise _ElementFallback


_MANY = object()  # a Specific Character Set of several values (ISO 2022 code extensions)


def _single_charset(charset):
    """The one value of a Specific Character Set; None when empty, _MANY for several."""
    if isinstance(charset, list | tuple):
        if len(charset) != 1:
            return _MANY if charset else None
        charset = charset[0]
    return charset or None


def text_codec_of(charset) -> str | None:
    """The Python codec for non-ASCII text under a Specific Character Set value; None: pydicom."""
    charset = _single_charset(charset)
    return TEXT_CODECS.get(charset.strip()) if isinstance(charset, str) else None


def charset_is_plain(charset) -> bool:
    """ASCII text encodes as ASCII under this character set (no ISO 2022 escapes)."""
    charset = _single_charset(charset)
    if charset is None:
        return True
    return isinstance(charset, str) and (charset.strip() in ("", "ISO_IR 6") or charset.strip() in TEXT_CODECS)


def encode(elements, explicit_vr: bool) -> bytes:
    """`elements` ((tag, VR, value), ascending tags) encoded in Implicit (explicit_vr=False) or
    Explicit VR Little Endian, as `write_dataset` would encode the equivalent Dataset."""
    charset = None
    for tag, _vr, value in elements:
        if tag >= CHARSET_TAG:
            if tag == CHARSET_TAG:
                charset = value
            break
    plain = charset_is_plain(charset)
    codec = text_codec_of(charset)
    parts = []
    for tag, vr, value in elements:
        if vr is None:
            parts.append(value)
            continue
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # group lengths are not written (PS3.5 7.2)
        if len(vr) != 2:
            raise NotFast(f"ambiguous VR {vr} of {tag:08X}")
        if plain:
            try:
                data = value_bytes(vr, value, codec)
            except _ElementFallback:
                data = None
            if data is not None and (not explicit_vr or len(data) <= 0xFFFF or vr in LENGTH_32):
                head, length_format = element_header(tag, vr, explicit_vr)
                parts.append(head + pack(length_format, len(data)) + data)
                continue
        parts.append(pydicom_element(DataElement(tag, vr, value), explicit_vr, charset))
    return b"".join(parts)


def pydicom_element(element: DataElement, explicit_vr: bool, charset=None) -> bytes:
    """One element written by pydicom as `write_dataset` writes it in a dataset whose Specific
    Character Set is `charset` (None: none)."""
    if len(element.VR) != 2:
        raise NotFast(f"ambiguous VR {element.VR} of {element.tag}")
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = not explicit_vr
    write_data_element(fp, element, charset if charset is not None else DEFAULT_ENCODING)
    return fp.getvalue()


def pydicom_encode(ds: Dataset, explicit_vr: bool) -> bytes:
    """A whole Dataset through pydicom's `write_dataset` (what pynetdicom's `encode` does, but
    raising instead of returning None when pydicom cannot encode it)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = not explicit_vr
    write_dataset(fp, ds)
    return fp.getvalue()
