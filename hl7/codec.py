"""Inbound HL7 v2 bytes -> a parsed message (hl7apy), and the ACK that answers it.

The character set comes from MSH-18 (HL7 table 0211), read from the raw bytes before anything
is decoded; without MSH-18, PACS_HL7_DEFAULT_CHARSET. Text that is not valid in the declared
set, a message that does not start with MSH, or one hl7apy cannot parse is unreadable: the
caller answers AR (an unknown HL7 version too). Field values are read from the segments hl7apy parsed, split at the
message's own separators and unescaped (HL7 v2 2.7: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\.br\\).
"""

import datetime
import itertools
import re
import threading
from dataclasses import dataclass, field

from django.conf import settings
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message as Hl7Message
from hl7apy.exceptions import HL7apyException
from hl7apy import check_encoding_chars, check_version
from hl7apy.parser import parse_segment

# HL7 table 0211 (and common variants) -> Python codec.
CHARSETS = {
    "ASCII": "ascii", "ISO IR6": "ascii",
    "8859/1": "latin-1", "ISO IR100": "latin-1", "8859/2": "iso8859_2", "8859/3": "iso8859_3",
    "8859/4": "iso8859_4", "8859/5": "iso8859_5", "8859/6": "iso8859_6", "8859/7": "iso8859_7",
    "8859/8": "iso8859_8", "8859/9": "iso8859_9", "8859/15": "iso8859_15",
    "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "ISO IR192": "utf-8",
    "GB 18030-2000": "gb18030", "BIG-5": "big5", "KS X 1001": "euc_kr", "ISO IR87": "iso2022_jp",
}
ACK_VERSION = "2.5"
ESCAPES = re.compile(r"\\(F|S|T|R|E|\.br|X[0-9A-Fa-f]*|H|N)\\")
SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")


class Unreadable(Exception):
    """The message cannot be read (answered AR). `header`: its MSH as far as it could be read
    (so that the AR names the message's control ID and sender), or None."""

    def __init__(self, reason: str, header: "Parsed | None" = None):
        super().__init__(reason)
        self.header = header


@dataclass
class Segment:
    name: str
    fields: list[str]  # fields[n] is field n (for MSH as well: fields[1] is the separator)


@dataclass
class Parsed:
    text: str
    charset_label: str
    segments: list[Segment]
    separators: dict = field(default_factory=dict)  # field, component, repetition, escape, subcomponent

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def first(self, name: str) -> Segment | None:
        return next((segment for segment in self.segments if segment.name == name), None)

    def value(self, segment: Segment | None, number: int, component: int = 1, repetition: int = 0,
              subcomponent: int = 1) -> str:
        """One value, unescaped; '' when absent."""
        if segment is None or number >= len(segment.fields):
            return ""
        repetitions = segment.fields[number].split(self.separators["repetition"]) if number != 2 or segment.name != "MSH" \
            else [segment.fields[number]]
        if repetition >= len(repetitions):
            return ""
        components = repetitions[repetition].split(self.separators["component"])
        if component > len(components):
            return ""
        subcomponents = components[component - 1].split(self.separators["subcomponent"])
        if subcomponent > len(subcomponents):
            return ""
        return self.unescape(subcomponents[subcomponent - 1])

    def components(self, segment: Segment | None, number: int, repetition: int = 0) -> list[str]:
        if segment is None or number >= len(segment.fields):
            return []
        repetitions = segment.fields[number].split(self.separators["repetition"])
        if repetition >= len(repetitions):
            return []
        return [self.unescape(c.split(self.separators["subcomponent"])[0])
                for c in repetitions[repetition].split(self.separators["component"])]

    def repetitions(self, segment: Segment | None, number: int) -> int:
        if segment is None or number >= len(segment.fields) or not segment.fields[number]:
            return 0
        return len(segment.fields[number].split(self.separators["repetition"]))

    def unescape(self, text: str) -> str:
        escape = self.separators["escape"]
        if not escape or escape not in text:
            return text
        pattern = ESCAPES if escape == "\\" else re.compile(re.escape(escape) + r"(F|S|T|R|E|\.br|X[0-9A-Fa-f]*|H|N)" + re.escape(escape))
        replacements = {"F": self.separators["field"], "S": self.separators["component"], "T": self.separators["subcomponent"],
                        "R": self.separators["repetition"], "E": escape, ".br": "\n", "H": "", "N": ""}

        def replace(match: re.Match) -> str:
            code = match.group(1)
            if code.startswith("X") and len(code) > 1:
                try:
                    return bytes.fromhex(code[1:]).decode("latin-1")
                except ValueError:
                    return ""
            return replacements.get(code, "")

        return pattern.sub(replace, text)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def message_type(self) -> str:
        return self.value(self.msh, 9, 1)

    @property
    def trigger(self) -> str:
        return self.value(self.msh, 9, 2)

    @property
    def control_id(self) -> str:
        return self.value(self.msh, 10)

    @property
    def version(self) -> str:
        return self.value(self.msh, 12)


def msh_fields(raw: bytes) -> list[bytes] | None:
    """The first segment's fields as bytes (fields[n] is MSH-n), or None when it is not an MSH."""
    if len(raw) < 8 or raw[:3] != b"MSH":
        return None
    separator = raw[3:4]
    first = re.split(rb"[\r\n]", raw, maxsplit=1)[0]
    return [b"MSH", separator, *first[4:].split(separator)]


def charset_of(raw: bytes) -> tuple[str, str]:
    """(Python codec, MSH-18 label) of a message; Unreadable for a set we do not know."""
    fields = msh_fields(raw)
    label = ""
    if fields is not None and len(fields) > 18:
        label = fields[18].split(b"~")[0].decode("ascii", "replace").strip()
    if not label:
        return settings.PACS_HL7_DEFAULT_CHARSET, ""
    codec = CHARSETS.get(label.upper())
    if codec is None:
        raise Unreadable(f"unsupported character set in MSH-18: {label[:40]}")
    return codec, label


def decode(raw: bytes) -> tuple[str, str, str]:
    """(text, codec, MSH-18 label); Unreadable when the bytes are not valid in the set."""
    codec, label = charset_of(raw)
    try:
        return raw.decode(codec), codec, label
    except UnicodeDecodeError as error:
        raise Unreadable(f"the message is not valid {label or codec} text (byte {error.start})") from None


def _separators(text: str) -> dict | None:
    """MSH-1 and MSH-2 as a separators dict, or None when they are not valid separators."""
    field_separator, encoding = text[3:4], text[4:8]
    if len(encoding) < 4 or not field_separator or field_separator.isalnum() or len(set(encoding)) < 4 \
            or field_separator in encoding or any(c.isalnum() or c.isspace() for c in encoding + field_separator):
        return None
    return {"field": field_separator, "component": encoding[0], "repetition": encoding[1],
            "escape": encoding[2], "subcomponent": encoding[3]}


def _header(text: str, label: str, separators: dict) -> Parsed:
    msh_line = text.split("\r", 1)[0]
    return Parsed(text, label, [Segment("MSH", ["MSH", separators["field"], *msh_line[4:].split(separators["field"])])],
                  separators)


def parse(raw: bytes) -> tuple[Parsed, str]:
    """The parsed message and the codec its text was read with; Unreadable if it cannot be."""
    if msh_fields(raw) is None:
        raise Unreadable("the message does not start with an MSH segment")
    try:
        text, codec, label = decode(raw)
    except Unreadable as error:  # still address the AR from the (ASCII) header
        readable = raw.decode("latin-1").split("\r", 1)[0]
        separators = _separators(readable)
        raise Unreadable(str(error), _header(readable, "", separators) if separators else None) from None
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    separators = _separators(text)
    if separators is None:
        raise Unreadable("MSH-1/MSH-2 do not hold valid separators")
    header = _header(text, label, separators)
    version = header.value(header.msh, 12)
    try:
        # hl7apy reads the header: the encoding characters, the version (one it knows) and every
        # MSH field by its data type. The other segments are read field by field below; parsing
        # them with hl7apy too cost 8 ms a message (bench/hl7.py) and added no check.
        chars = {name.upper(): char for name, char in separators.items()}
        check_encoding_chars(chars)
        check_version(version)
        parse_segment(text.split("\r", 1)[0], version=version, encoding_chars=chars,
                      validation_level=VALIDATION_LEVEL.TOLERANT)
    except (HL7apyException, ValueError, IndexError, KeyError, AttributeError) as error:
        reason = f"unsupported HL7 version {version!r}" if type(error).__name__ == "UnsupportedVersion" \
            else f"cannot parse the message header: {str(error) or type(error).__name__}"
        raise Unreadable(reason[:200], header) from None
    segments = []
    for line in text.split("\r"):
        if not line:
            continue
        name = line[:3]
        if not SEGMENT_ID.match(name):
            raise Unreadable(f"not a segment: {line[:20]!r}", header)
        if name == "MSH":
            fields = ["MSH", separators["field"], *line[4:].split(separators["field"])]
        else:
            fields = line.split(separators["field"])
        segments.append(Segment(name, fields))
    parsed = Parsed(text, label, segments, separators)
    if not parsed.message_type:
        raise Unreadable("MSH-9 (message type) is empty", header)
    return parsed, codec


# --- ACK ------------------------------------------------------------------------------------------

_control_ids = itertools.count(1)
_control_lock = threading.Lock()


def new_control_id() -> str:
    with _control_lock:
        number = next(_control_ids)
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%d%H%M%S}{number % 100000:05d}"


def plain(text: str, limit: int = 200) -> str:
    """Text safe in any field: no separators, no segment ends."""
    return re.sub(r"[|^~\\&\r\n]", " ", text)[:limit]


def build_ack(code: str, parsed: Parsed | None, reason: str = "", codec: str | None = None) -> tuple[str, bytes]:
    """(text, bytes) of the ACK: AA, AE or AR, answering `parsed` (None when it could not be read)."""
    ack = Hl7Message("ACK", version=ACK_VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = ack.msh
    msh.msh_3 = plain(settings.PACS_HL7_APPLICATION, 180)
    if settings.PACS_HL7_FACILITY:
        msh.msh_4 = plain(settings.PACS_HL7_FACILITY, 180)
    trigger = ""
    if parsed is not None:
        theirs = parsed.msh
        if parsed.value(theirs, 3):
            msh.msh_5 = plain(parsed.value(theirs, 3), 180)
        if parsed.value(theirs, 4):
            msh.msh_6 = plain(parsed.value(theirs, 4), 180)
        trigger = plain(parsed.trigger, 3)
        if parsed.charset_label:
            msh.msh_18 = plain(parsed.charset_label, 16)
    msh.msh_9 = f"ACK^{trigger}^ACK" if trigger else "ACK"
    msh.msh_10 = new_control_id()
    msh.msh_11 = plain(parsed.value(parsed.msh, 11), 3) if parsed is not None and parsed.value(parsed.msh, 11) else "P"
    ack.msa.msa_1 = code
    if parsed is not None and parsed.control_id:
        ack.msa.msa_2 = plain(parsed.control_id, 199)
    if reason:
        ack.msa.msa_3 = plain(reason, 80)
    text = ack.to_er7()
    return text, text.encode(codec or settings.PACS_HL7_DEFAULT_CHARSET, "replace")
