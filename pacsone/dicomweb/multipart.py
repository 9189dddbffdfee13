"""multipart/related (RFC 2387) as PS3.18 uses it: answers written as a stream, request bodies
(STOW-RS) read into a bounded temporary file and split into parts without holding them all in
memory. Media types with their parameters (Accept, Content-Type) are parsed here too."""

import mmap
import secrets
import tempfile
from dataclasses import dataclass, field

from .dicom_json import BadRequest

READ_CHUNK = 1 << 20
MAX_PART_HEADER_BYTES = 8192


@dataclass
class MediaRange:
    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0


def parse_media_type(text: str) -> MediaRange:
    media, *rest = text.split(";")
    params = {}
    for item in rest:
        name, _, value = item.strip().partition("=")
        if name:
            params[name.strip().lower()] = value.strip().strip('"')
    quality = 1.0
    try:
        quality = float(params.pop("q", "1"))
    except ValueError:
        pass
    return MediaRange(media.strip().lower(), params, quality)


def parse_accept(header: str) -> list[MediaRange]:
    """The Accept header's media ranges, best quality first (in their order when equal); an
    empty header accepts anything."""
    ranges = [parse_media_type(part) for part in _split_outside_quotes(header) if part.strip()]
    ranges = [r for r in ranges if r.quality > 0]
    return sorted(ranges, key=lambda r: -r.quality) or [MediaRange("*/*")]


def _split_outside_quotes(text: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def new_boundary() -> str:
    return secrets.token_hex(16)


def content_type(boundary: str, part_type: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def part_header(boundary: str, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"--{boundary}\r\n{lines}\r\n".encode("ascii")


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("ascii")


def stream(boundary: str, parts):
    """The body of a multipart answer; `parts` yields (headers, iterable of bytes) pairs."""
    for headers, chunks in parts:
        yield part_header(boundary, headers)
        for chunk in chunks:
            if chunk:
                yield bytes(chunk) if not isinstance(chunk, bytes) else chunk
        yield b"\r\n"
    yield closing(boundary)


# --- Reading a request body ---------------------------------------------------------------------


class TooLarge(Exception):
    """The body is larger than the limit."""


def spool_body(request, limit: int):
    """The request body in a temporary file (on disk past a few MB), refusing past `limit` bytes
    before reading more than that."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    spool = tempfile.TemporaryFile()
    size = 0
    try:
        while chunk := request.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size


@dataclass
class Part:
    headers: dict[str, str]
    start: int  # offsets of its content in the body
    end: int


def split_parts(body, size: int, boundary: str) -> list[Part]:
    """The parts of a multipart body held in the file `body`. Raises BadRequest for a body that
    is not a multipart message with this boundary."""
    if not boundary or len(boundary) > 200:
        raise BadRequest("the Content-Type has no usable boundary parameter")
    if size == 0:
        raise BadRequest("the request body is empty")
    delimiter = b"--" + boundary.encode("latin-1")
    with mmap.mmap(body.fileno(), 0, access=mmap.ACCESS_READ) as data:
        first = data.find(delimiter)
        if first < 0:
            raise BadRequest("the body does not start with the multipart boundary")
        parts, position = [], first
        while True:
            after = position + len(delimiter)
            if data[after:after + 2] == b"--":
                return parts
            if data[after:after + 2] != b"\r\n":
                raise BadRequest("a multipart boundary is not followed by a line break")
            head_end = data.find(b"\r\n\r\n", after + 2, after + 2 + MAX_PART_HEADER_BYTES)
            if head_end < 0:
                if data[after + 2:after + 4] == b"\r\n":  # a part without headers
                    head_end = after
                else:
                    raise BadRequest("a part's headers do not end (or are longer than 8 kB)")
            headers = _part_headers(bytes(data[after + 2:head_end]))
            start = head_end + 4
            following = data.find(b"\r\n" + delimiter, start)
            if following < 0:
                raise BadRequest("the multipart body is not closed by its final boundary")
            parts.append(Part(headers, start, following))
            position = following + 2


def _part_headers(raw: bytes) -> dict[str, str]:
    headers = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequest(f"a part header line is malformed: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def copy_part(body, part: Part, target) -> None:
    """Copy one part's content from the body file into the open binary file `target`."""
    body.seek(part.start)
    remaining = part.end - part.start
    while remaining:
        chunk = body.read(min(READ_CHUNK, remaining))
        if not chunk:
            raise BadRequest("the body ended inside a part")
        target.write(chunk)
        remaining -= len(chunk)
