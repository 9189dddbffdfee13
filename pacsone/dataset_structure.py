"""Whether every element of a stored or received data set ends inside it.

A truncated data set (a transfer cut short, a file copied half-way: an element whose length runs
past the end of the stream) parses as far as it goes and would be stored as if whole, its pixel
data missing. The ingest path refuses it instead (issue 11). The walk reads element headers only
(through a memory map: pixel data is never read) and descends into sequences and encapsulated
pixel data of undefined length, which have no length to skip.
"""

import mmap
import struct
from pathlib import Path

UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
# Explicit VRs whose length is 4 bytes after 2 reserved ones (PS3.5 7.1.2)
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
                       b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
MAX_DEPTH = 64  # nested sequences deeper than this are not walked (nothing real nests so deep)


class Truncated(ValueError):
    """An element runs past the end of the data set."""


class _Unknown(Exception):
    """Something the walk does not understand (an invalid VR): no verdict, pydicom's reading judges."""


class _NeedMore(Exception):
    """The walk needs bytes beyond those at hand (check_head)."""


def _name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Walk:
    """`end`: where the data set ends, when only its first bytes (`data`) are at hand."""

    def __init__(self, data, position: int, little: bool, end: int | None = None):
        self.data, self.position = data, position
        self.available = len(data)
        self.end = self.available if end is None else end
        self.tag_length = struct.Struct("<HHL" if little else ">HHL")
        self.long = struct.Struct("<L" if little else ">L")
        self.short = struct.Struct("<H" if little else ">H")

    def header(self, implicit: bool) -> tuple[int, bytes | None, int]:
        """(tag, VR or None, value length) of the next element; the position moves to its value."""
        position = self.position
        if position < self.end and min(position + 8, self.end) > self.available:
            raise _NeedMore
        if position + 8 > self.end:
            raise Truncated(f"it ends inside an element header at byte {position}")
        group, element, length = self.tag_length.unpack_from(self.data, position)
        tag = group << 16 | element
        if group == 0xFFFE or implicit:  # items and delimiters have no VR in any syntax
            self.position = position + 8
            return tag, None, length
        vr = bytes(self.data[position + 4:position + 6])
        if vr not in LONG_VRS and vr not in SHORT_VRS:
            raise _Unknown
        if vr in LONG_VRS:
            if position + 12 > self.end:
                raise Truncated(f"it ends inside the header of {_name(tag)}")
            if position + 12 > self.available:
                raise _NeedMore
            self.position = position + 12
            return tag, vr, self.long.unpack_from(self.data, position + 8)[0]
        self.position = position + 8
        return tag, vr, self.short.unpack_from(self.data, position + 6)[0]

    def skip(self, tag: int, length: int) -> None:
        self.position += length
        if self.position > self.end:
            raise Truncated(f"{_name(tag)} runs {self.position - self.end} bytes past the end")

    def elements(self, implicit: bool, depth: int = 0, until: int | None = None) -> None:
        """Elements up to the end of the data set, or up to the delimiter `until`. The common
        case (an element of defined length) is done inline: a header has hundreds of them."""
        if depth > MAX_DEPTH:
            raise _Unknown
        data, end, available = self.data, self.end, self.available
        unpack_tag_length, unpack_long, unpack_short = (self.tag_length.unpack_from, self.long.unpack_from,
                                                        self.short.unpack_from)
        while True:
            position = self.position
            if position < end and min(position + 8, end) > available:
                raise _NeedMore  # (at the end itself, there is nothing left to read)
            if until is None and end - position < 8:
                if data[position:end].strip(b"\0"):
                    raise Truncated(f"it ends inside an element header ({end - position} bytes left)")
                return  # the end, or padding to an even length
            if position + 8 > end:
                raise Truncated(f"it ends inside an element header at byte {position}")
            group, element, length = unpack_tag_length(data, position)
            vr = None
            if group == 0xFFFE or implicit:
                position += 8
            else:
                vr = data[position + 4:position + 6]
                if vr in LONG_VRS:
                    if position + 12 > end:
                        raise Truncated(f"it ends inside the header of {_name(group << 16 | element)}")
                    if position + 12 > available:
                        raise _NeedMore
                    length = unpack_long(data, position + 8)[0]
                    position += 12
                elif vr in SHORT_VRS:
                    length = unpack_short(data, position + 6)[0]
                    position += 8
                else:
                    raise _Unknown
            tag = group << 16 | element
            if until is not None and tag == until:
                self.position = position
                return
            if length != UNDEFINED_LENGTH:
                position += length
                if position > end:
                    raise Truncated(f"{_name(tag)} runs {position - end} bytes past the end")
                self.position = position
                continue
            self.position = position
            if tag == PIXEL_DATA:
                self.items(implicit, depth, encapsulated=True)
            else:  # a sequence; UN of undefined length holds an implicit VR sequence (PS3.5 6.2.2)
                self.items(implicit or vr == b"UN", depth)

    def items(self, implicit: bool, depth: int, encapsulated: bool = False) -> None:
        """Items up to the Sequence Delimitation Item."""
        while True:
            tag, _vr, length = self.header(True)
            if tag == SEQUENCE_END:
                return
            if tag != ITEM:
                raise _Unknown  # not a sequence as the walk understands it
            if length != UNDEFINED_LENGTH:
                self.skip(tag, length)
            elif encapsulated:
                raise _Unknown  # a fragment must have a length; pydicom judges the rest
            else:
                self.elements(implicit, depth + 1, until=ITEM_END)


def _data_set_start(data) -> int:
    """Where a Part-10 file's data set starts: after the preamble and group 0002 (always
    Explicit VR Little Endian)."""
    walk = _Walk(data, 132 if data[128:132] == b"DICM" else 0, little=True)
    while walk.position + 2 <= walk.end and data[walk.position:walk.position + 2] == b"\x02\x00":
        tag, _vr, length = walk.header(False)
        walk.skip(tag, length)
    return walk.position


def check_data(data, part10: bool, implicit: bool, little: bool) -> None:
    """Raise Truncated when an element of the data set in `data` (bytes or a memory map) runs
    past its end. `part10`: it starts with a preamble and File Meta Information; `implicit`,
    `little`: the data set's encoding. A structure the walk does not understand passes (pydicom's
    reading judges it)."""
    try:
        start = _data_set_start(data) if part10 else 0
        _Walk(data, start, little).elements(implicit)
    except _Unknown:
        return


def check_head(head, length: int, implicit: bool, little: bool, start: int = 0) -> bool:
    """check_data() of a data set (no preamble, no file meta) of `length` bytes of which only the
    first ones, `head`, are at hand (a received data set's, kept in memory): True when they
    sufficed for a verdict (its last element, the pixel data, is skipped by its length), False
    when the walk needs bytes beyond them. `start`: the top-level element to begin at, when
    every element before it is known to lie whole inside `head` (the receiver's walk of the
    header found so)."""
    try:
        _Walk(head, start, little, end=length).elements(implicit)
    except _Unknown:
        return True
    except _NeedMore:
        return False
    return True


def check_file(path: Path, part10: bool, implicit: bool, little: bool) -> None:
    """check_data() of a file, through a memory map: its pixel data is never read."""
    with open(path, "rb") as fp:
        if fp.seek(0, 2) == 0:
            raise Truncated("the file is empty")
        with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as data:
            check_data(data, part10, implicit, little)
