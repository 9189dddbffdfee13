"""DICOM upper-layer PDUs on a blocking socket (PS3.8 section 9), for the SCP's own engine.

One thread per association reads and writes its socket directly: no network thread, no queues,
no state machine objects per message. What is encoded once per association (A-ASSOCIATE-RQ/AC/RJ)
is left to pynetdicom's PDU classes; what happens per message (P-DATA-TF and its presentation
data values) is done here with struct.
"""

import os
import select
import socket
import struct
import time
from typing import Iterable

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

# Message control header of a presentation data value (PS3.8 E.2).
COMMAND = 0x01
LAST = 0x02

PDU_HEADER_LENGTH = 6
_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LBB")
P_DATA_OVERHEAD = _PDV_HEADER.size  # bytes of one PDV's header inside a P-DATA-TF body
ASSOCIATION_PDU_LIMIT = 1 << 20  # an A-ASSOCIATE-RQ with 128 contexts is ~30 kB
IOV_BATCH = 512  # buffers per sendmsg() (the kernel takes up to 1024)
UNLIMITED_PDU_CAP = 1 << 28  # a peer told "no limit" still may not make us allocate more
SEND_FRAGMENT_CAP = 4 << 20  # we send PDUs no larger than this, whatever the peer accepts
SEND_BATCH_BYTES = 1 << 20  # a stored file goes out this much at a time (one read, one sendmsg)


def pdu_bytes(pdu_type: int, body) -> bytes:
    """A whole PDU: its 6-byte header (type, reserved, length) and `body`."""
    return _PDU_HEADER.pack(pdu_type, len(body)) + bytes(body)


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke) while we were reading."""


class ProtocolError(Exception):
    """The peer sent something the upper layer protocol does not allow here."""


class MessageTooLarge(ProtocolError):
    """A command set or data set longer than we hold (a setting names the limit)."""


class DeadlineExceeded(TimeoutError):
    """The peer did not send what we waited for in time (names which deadline)."""


class Connection:
    """A TCP connection carrying DICOM PDUs. Incoming PDU bodies are read into one reusable
    buffer (a view of it is only valid until the next read)."""

    READ_AHEAD = 256 * 1024  # bytes asked of the socket at once: several PDUs per recv

    def __init__(self, sock: socket.socket, max_receive: int):
        self.sock = sock
        self.max_receive = max_receive  # what we announced; 0 = no limit
        self.peer_max = 0  # what the peer announced; 0 = no limit
        self.timeout = sock.gettimeout()  # for sends, and for reads given no deadline
        self.sending_incomplete = False  # a data set went out in part: the stream is broken
        # Received bytes not yet taken: self._buffer[self._start:self._end]. A sender's 16 kB PDUs
        # arrive several per recv, each PDU header and body without a call of its own.
        self._buffer = bytearray(self.READ_AHEAD)
        self._start = self._end = 0

    def set_timeout(self, seconds: float | None) -> None:
        self.timeout = seconds
        self.sock.settimeout(seconds)

    # --- reading ------------------------------------------------------------------------------

    def _fill(self, needed: int, deadline: float | None, what: str) -> None:
        """Have at least `needed` unread bytes in the buffer, reading what the socket holds."""
        if self._end - self._start >= needed:
            return
        if self._start + needed > len(self._buffer):  # make room: move the unread bytes to the front
            unread = self._end - self._start
            if needed > len(self._buffer):
                grown = bytearray(max(needed, self.READ_AHEAD))
                grown[:unread] = self._buffer[self._start:self._end]
                self._buffer = grown
            else:
                self._buffer[:unread] = self._buffer[self._start:self._end]
            self._start, self._end = 0, unread
        view = memoryview(self._buffer)
        recv_into = self.sock.recv_into
        timed = False
        try:
            while self._end - self._start < needed:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise DeadlineExceeded(what)
                    self.sock.settimeout(remaining)
                    timed = True
                try:
                    received = recv_into(view[self._end:])
                except TimeoutError:
                    raise DeadlineExceeded(what) from None
                if not received:
                    raise ConnectionClosed("the peer closed the connection")
                self._end += received
        finally:
            view.release()
            if timed:
                self.sock.settimeout(self.timeout)

    def read_pdu(self, wait: float | None = None, within: float | None = None) -> tuple[int, memoryview]:
        """(PDU type, body). `wait`: seconds for the PDU to begin; `within`: seconds for all of it,
        counted from its first byte when `wait` is given, else from now (so a peer that sends a
        byte at a time cannot hold us). Neither: the connection's timeout for each read.
        Raises ConnectionClosed, ProtocolError, DeadlineExceeded or socket.timeout. The body is a
        view of the read buffer, valid until the next read."""
        if wait is not None:
            self._fill(1, time.monotonic() + wait, f"no PDU began within {wait:g}s")
        deadline = None if within is None else time.monotonic() + within
        what = f"a PDU did not arrive whole within {within:g}s" if within is not None else ""
        self._fill(PDU_HEADER_LENGTH, deadline, what)
        pdu_type, length = _PDU_HEADER.unpack_from(self._buffer, self._start)
        if not A_ASSOCIATE_RQ <= pdu_type <= A_ABORT:
            raise ProtocolError(f"unknown PDU type 0x{pdu_type:02x}")
        limit = (self.max_receive or UNLIMITED_PDU_CAP) if pdu_type == P_DATA_TF else ASSOCIATION_PDU_LIMIT
        if length > limit:
            raise ProtocolError(f"a PDU of {length} bytes, more than the {limit} allowed")
        self._fill(PDU_HEADER_LENGTH + length, deadline, what)
        body_start = self._start + PDU_HEADER_LENGTH
        self._start = body_start + length
        if self._start == self._end:
            self._start = self._end = 0
        return pdu_type, memoryview(self._buffer)[body_start:body_start + length]

    def has_pending_input(self, wait: float = 0) -> bool:
        """Whether the peer sent something we have not read (waiting up to `wait` seconds for it)."""
        if self._end > self._start:
            return True
        readable, _, _ = select.select([self.sock], [], [], wait)
        return bool(readable)

    # --- writing ------------------------------------------------------------------------------

    def send_pdu(self, pdu_type: int, body: bytes) -> None:
        self.sock.sendall(pdu_bytes(pdu_type, body))

    def fragment_size(self) -> int:
        """The most data bytes one PDV may carry to this peer (its maximum PDU length; 1 MB when it
        set none; never more than SEND_FRAGMENT_CAP, so that sending holds little memory)."""
        return min(self.peer_max - P_DATA_OVERHEAD, SEND_FRAGMENT_CAP) if self.peer_max else (1 << 20)

    def send_message(self, context_id: int, command: bytes, dataset: bytes | memoryview | None = None) -> None:
        """A DIMSE message: its command set, then its data set, fragmented to the peer's limit."""
        parts = self._fragments(context_id, COMMAND, command)
        if dataset is not None:
            parts += self._fragments(context_id, 0, dataset)
        self._send_parts(parts)

    def send_file_dataset(self, context_id: int, fd: int, offset: int, length: int) -> None:
        """The data set of a stored file (bytes `offset`..`offset+length` of `fd`), fragmented,
        read and sent SEND_BATCH_BYTES at a time (memory stays flat whatever the file's size)."""
        size = self.fragment_size()
        batch = memoryview(bytearray(min(length, max(size, SEND_BATCH_BYTES // size * size))))
        position = 0
        self.sending_incomplete = True
        while True:
            count = min(len(batch), length - position)
            got = 0
            while got < count:
                read = os.preadv(fd, [batch[got:count]], offset + position + got)
                if not read:
                    raise OSError("the stored file is shorter than its index says")
                got += read
            position += count
            self._send_parts(self._fragments(context_id, 0, batch[:count], final=position >= length))
            if position >= length:
                break
        self.sending_incomplete = False

    def send_dataset_stream(self, context_id: int, chunks: Iterable) -> None:
        """A data set given as a sequence of buffers (of any sizes), fragmented as it comes: at
        most one fragment is held here. The caller's exception midway leaves sending_incomplete."""
        size = self.fragment_size()
        pending = bytearray()
        self.sending_incomplete = True
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while view:
                if len(pending) == size:  # a full fragment and more follows: not the last one
                    self._send_parts(self._fragments(context_id, 0, pending, final=False))
                    pending.clear()
                take = min(len(view), size - len(pending))
                pending += view[:take]
                view = view[take:]
        self._send_parts(self._fragments(context_id, 0, pending, final=True))
        self.sending_incomplete = False

    def _fragments(self, context_id: int, kind: int, data, final: bool = True) -> list:
        """PDU header + PDV header and data of each fragment, as a list of buffers (the last
        fragment is marked last when `final`)."""
        view = memoryview(data)
        size = self.fragment_size()
        parts = []
        for start in range(0, max(len(view), 1), size):
            chunk = view[start:start + size]
            control = kind | (LAST if final and start + size >= len(view) else 0)
            parts.append(_PDU_HEADER.pack(P_DATA_TF, len(chunk) + P_DATA_OVERHEAD)
                         + _PDV_HEADER.pack(len(chunk) + 2, context_id, control))
            parts.append(chunk)
        return parts

    def _send_parts(self, parts: list) -> None:
        """Send buffers in order with as few system calls as the kernel allows."""
        if len(parts) == 2 and len(parts[1]) < 16384:  # a small message: one copy, one send
            self.sock.sendall(parts[0] + bytes(parts[1]))
            return
        index = 0
        while index < len(parts):
            batch = parts[index:index + IOV_BATCH]
            sent = self.sock.sendmsg(batch)
            for part in batch:  # drop what went out; a partly sent buffer keeps its rest
                if sent >= len(part):
                    sent -= len(part)
                    index += 1
                    continue
                parts[index] = memoryview(part)[sent:]
                break

    def abort(self, source: int = 0x02, reason: int = 0x00) -> None:
        """Send A-ABORT (best effort) and close."""
        try:
            self.send_pdu(A_ABORT, bytes([0, 0, source, reason]))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def iter_pdvs(body: memoryview):
    """(context ID, control header, data) of each presentation data value of a P-DATA-TF body."""
    position, end = 0, len(body)
    while position < end:
        if end - position < P_DATA_OVERHEAD:
            raise ProtocolError("truncated presentation data value")
        length, context_id, control = _PDV_HEADER.unpack_from(body, position)
        if length < 2 or position + 4 + length > end:
            raise ProtocolError("presentation data value length out of range")
        yield context_id, control, body[position + P_DATA_OVERHEAD:position + 4 + length]
        position += 4 + length
