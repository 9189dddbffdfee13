"""How the text of a request identifier (C-FIND, C-MOVE, C-GET) is read, before the engine
decodes it.

A query without Specific Character Set (0008,0005) should be ASCII; peers such as
`findscu -k PatientName=MÜLLER*` typed in a UTF-8 terminal send UTF-8 bytes anyway. pydicom
would read them as Latin-1 (`MÃ\x9cLLER*`, which finds nothing); `read_leniently()` reads such
text as UTF-8 when every non-ASCII text value is valid UTF-8, and leaves anything else as the
standard says.
"""

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

CHARSET_TAG = 0x00080005
# Text VRs that (0008,0005) applies to (PS3.5 6.1.2.3).
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})


def read_leniently(identifier: Dataset) -> None:
    """Before any value of `identifier` is converted: without a (0008,0005), or with an empty
    one (a return key: `findscu -k SpecificCharacterSet`), read its text as UTF-8 when every
    non-ASCII text value is valid UTF-8."""
    charset = identifier._dict.get(CHARSET_TAG)
    if charset is not None and (not isinstance(charset, RawDataElement) or (charset.value or b"").strip()):
        return
    found_utf8 = False
    for raw in identifier._dict.values():
        if not isinstance(raw, RawDataElement) or not raw.value:
            continue
        vr = raw.VR or _dictionary_vr(raw.tag)
        if vr not in TEXT_VRS or raw.value.isascii():
            continue
        try:
            raw.value.decode("utf-8")
        except UnicodeDecodeError:
            return  # not UTF-8: the default reading stands
        found_utf8 = True
    if found_utf8:
        implicit_vr, little_endian = identifier.original_encoding
        identifier.set_original_encoding(implicit_vr, little_endian, ["UTF8"])


def _dictionary_vr(tag) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None
