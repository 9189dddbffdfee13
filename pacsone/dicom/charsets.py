"""Specific Character Set (0008,0005) of what we write: which character set a C-FIND answer,
a query we send and an edited file are written in (PS3.3 C.12.1.1.2, PS3.5 6.1).

An answer's bytes and its (0008,0005) must agree, whether a value comes from an index column or
from the stored DICOM JSON header (both hold decoded text). The rule, in `answer_charset()`:
- an answer whose text is all ASCII carries no (0008,0005) (the default repertoire holds it);
- otherwise the query's own character set, when the peer asked in one and every non-ASCII
  value of the answer can be written in it: the peer has shown that it reads that set (an
  older system that queries in ISO_IR 100 or in ISO 2022 IR 87 may not read UTF-8);
- otherwise ISO_IR 192 (UTF-8), which holds any text.

How a query without (0008,0005) is read (UTF-8 when it is): net/identifier_text.py, where the
engine decodes identifiers.
"""

from pydicom.charset import python_encoding
from pydicom.dataset import Dataset

UTF8 = "ISO_IR 192"
CHARSET_TAG = 0x00080005
# Text VRs that (0008,0005) applies to (PS3.5 6.1.2.3).
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
# The default repertoire (ASCII) under its names; pydicom reads it as Latin-1, which is wider.
ASCII_TERMS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
# JIS X 0201 (ISO_IR 13): pydicom's codec is shift_jis, of which only the one-byte codes belong.
JIS_X_0201_TERMS = frozenset({"ISO_IR 13", "ISO 2022 IR 13"})


def query_charset(identifier: Dataset) -> list[str]:
    """The defined terms of the query's (0008,0005), stripped; [] when it has none."""
    element = identifier.get(CHARSET_TAG)
    if element is None or not element.value:
        return []
    value = element.value
    terms = [value] if isinstance(value, str) else list(value)
    return [str(term).strip() for term in terms]


def name_query_charset(identifier: Dataset) -> None:
    """A query we send: without a (0008,0005), one with non-ASCII text (`MÜLLER*` typed in the
    remote search) says ISO_IR 192, as pydicom then writes that text in UTF-8."""
    if CHARSET_TAG in identifier:
        return
    for element in identifier:
        if element.VR in TEXT_VRS and not str(element.value or "").isascii():
            identifier.SpecificCharacterSet = UTF8
            return


def make_room_for(ds: Dataset, texts: list[str]) -> None:
    """Before new text values are set in a stored data set (an edit): when its (0008,0005)
    cannot hold them, every value is decoded and the data set switched to ISO_IR 192, so that
    pydicom writes the new text instead of `?` (or Latin-1 bytes under no character set)."""
    new = [text for text in texts if not text.isascii()]
    if not new:
        return
    terms = query_charset(ds)
    if terms == [UTF8] or (terms and _can_write(terms, new)):
        return
    ds.decode()
    ds.SpecificCharacterSet = UTF8


def answer_charset(asked: list[str], texts: list[str]) -> str | list[str] | None:
    """The (0008,0005) value of an answer holding the non-ASCII strings `texts`, for a query
    whose own character set was `asked` (see the module's docstring); None: no (0008,0005)."""
    if not texts:
        return None
    if asked and asked != [UTF8] and _can_write(asked, texts):
        return asked[0] if len(asked) == 1 else asked
    return UTF8


def _can_write(terms: list[str], texts: list[str]) -> bool:
    """Every character of `texts` can be written in one of the character sets `terms`."""
    codecs = []
    for term in terms:
        if term in ASCII_TERMS:
            continue  # ASCII is written under any set; non-ASCII text needs another one
        codec = python_encoding.get(term)
        if codec is None:
            return False  # a term we do not know: answer in UTF-8
        codecs.append((codec, term in JIS_X_0201_TERMS))
    if not codecs:
        return False
    if len(codecs) == 1 and not codecs[0][1]:
        try:
            for text in texts:
                text.encode(codecs[0][0])
            return True
        except (UnicodeError, LookupError):
            return False
    # Code extensions: pydicom switches sets character run by character run.
    return all(_char_fits(char, codecs) for text in texts for char in set(text) if not char.isascii())


def _char_fits(char: str, codecs: list[tuple[str, bool]]) -> bool:
    for codec, one_byte_only in codecs:
        try:
            encoded = char.encode(codec)
        except (UnicodeError, LookupError):
            continue
        if not one_byte_only or len(encoded) == 1:
            return True
    return False


def non_ascii_json_texts(attribute: dict, found: list[str]) -> None:
    """Append the non-ASCII strings of a DICOM JSON attribute (its values, person name groups,
    the attributes of sequence items) to `found`. On every C-FIND answer: kept cheap."""
    values = attribute.get("Value") if type(attribute) is dict else None
    if not values:
        return
    for value in values:
        kind = type(value)
        if kind is str:
            if not value.isascii():
                found.append(value)
        elif kind is dict:  # person name groups, or a sequence item's attributes
            for part in value.values():
                if type(part) is str:
                    if not part.isascii():
                        found.append(part)
                else:
                    non_ascii_json_texts(part, found)
