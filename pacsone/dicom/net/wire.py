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

_PDU_HEADER = struct.Struct(">BxL")
_PDV_HEADER = struct.Struct(">LBB")
P_DATA_OVERHEAD = _PDV_HEADER.size  # bytes of one PDV's header inside a P-DATA-TF body
ASSOCIATION_PDU_LIMIT = 1 << 20  # an A-ASSOCIATE-RQ with 128 contexts is ~30 kB
IOV_BATCH = 512  # buffers per sendmsg() (the kernel takes up to 1024)
UNLIMITED_PDU_CAP = 1 << 28  # a peer told "no limit" still may not make us allocate more


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke) while we were reading."""


class ProtocolError(Exception):
    """The peer sent something the upper layer protocol does not allow here."""


class Connection:
    """A TCP connection carrying DICOM PDUs. Incoming PDU bodies are read into one reusable
    buffer (a view of it is only valid until the next read)."""

    def __init__(self, sock: socket.socket, max_receive: int):
        self.sock = sock
        self.max_receive = max_receive  # what we announced; 0 = no limit
        self.peer_max = 0  # what the peer announced; 0 = no limit
        self._buffer = bytearray(64 * 1024)  # grows to the largest PDU received
        self._header = bytearray(6)

    # --- reading ------------------------------------------------------------------------------

    def _read_exactly(self, view: memoryview) -> None:
        recv_into = self.sock.recv_into
        while view:
            received = recv_into(view)
            if not received:
                raise ConnectionClosed("the peer closed the connection")
            view = view[received:]

    def read_pdu(self) -> tuple[int, memoryview]:
        """(PDU type, body). Raises ConnectionClosed, ProtocolError or socket.timeout."""
        self._read_exactly(memoryview(self._header))
        pdu_type, length = _PDU_HEADER.unpack(self._header)
        if not A_ASSOCIATE_RQ <= pdu_type <= A_ABORT:
            raise ProtocolError(f"unknown PDU type 0x{pdu_type:02x}")
        limit = (self.max_receive or UNLIMITED_PDU_CAP) if pdu_type == P_DATA_TF else ASSOCIATION_PDU_LIMIT
        if length > limit:
            raise ProtocolError(f"a PDU of {length} bytes, more than the {limit} allowed")
        if length > len(self._buffer):
            self._buffer = bytearray(length)
        body = memoryview(self._buffer)[:length]
        self._read_exactly(body)
        return pdu_type, body

    def has_pending_input(self) -> bool:
        """Whether the peer sent something we have not read (without blocking)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    # --- writing ------------------------------------------------------------------------------

    def send_pdu(self, pdu_type: int, body: bytes) -> None:
        self.sock.sendall(_PDU_HEADER.pack(pdu_type, len(body)) + body)

    def fragment_size(self) -> int:
        """The most data bytes one PDV may carry to this peer (its maximum PDU length)."""
        return (self.peer_max - P_DATA_OVERHEAD) if self.peer_max else (1 << 20)

    def send_message(self, context_id: int, command: bytes, dataset: bytes | memoryview | None = None) -> None:
        """A DIMSE message: its command set, then its data set, fragmented to the peer's limit."""
        parts = self._fragments(context_id, COMMAND, command)
        if dataset is not None:
            parts += self._fragments(context_id, 0, dataset)
        self._send_parts(parts)

    def send_file_dataset(self, context_id: int, fd: int, offset: int, length: int) -> None:
        """The data set of a stored file (bytes `offset`..`offset+length` of `fd`), fragmented."""
        data = memoryview(bytearray(length))
        got = 0
        while got < length:
            read = os.preadv(fd, [data[got:]], offset + got)
            if not read:
                raise OSError("the stored file is shorter than its index says")
            got += read
        self._send_parts(self._fragments(context_id, 0, data))

    def _fragments(self, context_id: int, kind: int, data) -> list:
        """PDU header + PDV header and data of each fragment, as a list of buffers."""
        view = memoryview(data)
        size = self.fragment_size()
        parts = []
        for start in range(0, max(len(view), 1), size):
            chunk = view[start:start + size]
            control = kind | (LAST if start + size >= len(view) else 0)
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
