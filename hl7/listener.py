"""The MLLP listener on PACS_HL7_PORT: hl7apy's MLLPServer (a threading TCP server), with a
request handler that keeps a connection open for many messages and bounds what a peer can do.

hl7apy's own handler reads one message per connection byte by byte, without a size limit,
and decodes it as UTF-8 whatever MSH-18 says; ours:
- reads frames (<VT> message <FS><CR>, HL7 v2 MLLP release 1) from a buffer, any number per
  connection, several per TCP packet or one split over many;
- answers each with its ACK (inbound.handle: AA, AE or AR);
- a frame over PACS_HL7_MAX_MESSAGE_BYTES gets an AR and the connection is closed; a frame cut
  short by a new start block gets an AR; bytes outside any frame close the connection;
- a message begun must arrive within PACS_HL7_MESSAGE_TIMEOUT, and a connection idle for
  PACS_HL7_IDLE_TIMEOUT is closed; at most PACS_HL7_MAX_CONNECTIONS at once (more are closed).
"""

import logging
import signal
import socket
import threading
import time

from django.conf import settings
from django.db import connections
from hl7apy.mllp import MLLPRequestHandler, MLLPServer

from . import codec
from .inbound import handle
from .models import Message
from pacsone.humanize import count

log = logging.getLogger(__name__)

START, END, CR = b"\x0b", b"\x1c", b"\r"
KEPT_OF_A_REJECTED_FRAME = 64 * 1024  # bytes of an oversized or truncated frame kept in the log
LONE_END_WAIT_SECONDS = 0.5  # a frame ended by <FS> alone: how long to wait for its <CR>


class FramingError(Exception):
    """Bytes that are not inside a frame: the connection cannot be trusted to resynchronize."""


class FrameTooLarge(Exception):
    def __init__(self, prefix: bytes):
        super().__init__("message over the size limit")
        self.prefix = prefix


class PeerClosed(Exception):
    """The peer closed the connection (between frames: normal; inside one: a truncated frame)."""

    def __init__(self, inside_frame: bool):
        super().__init__("closed inside a frame" if inside_frame else "closed")
        self.inside_frame = inside_frame


class FrameReader:
    """Frames from a socket, with a size cap and deadlines."""

    def __init__(self, sock: socket.socket, max_bytes: int, message_timeout: float, idle_timeout: float):
        self.sock, self.max_bytes = sock, max_bytes
        self.message_timeout, self.idle_timeout = message_timeout, idle_timeout
        self.buffer = bytearray()
        self.truncated: list[bytes] = []  # frames cut short by a new start block, to be rejected

    def _receive(self, timeout: float, inside_frame: bool) -> None:
        if timeout <= 0:
            raise TimeoutError("the message did not arrive in time")
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data in time") from None
        if not data:
            raise PeerClosed(inside_frame)
        self.buffer += data

    def next_frame(self) -> bytes:
        """The next message's bytes (between the blocks)."""
        while True:
            while self.buffer[:1] in (b"\r", b"\n"):
                del self.buffer[:1]
            if not self.buffer:
                self._receive(self.idle_timeout, inside_frame=False)
                continue
            if self.buffer[:1] != START:
                raise FramingError(f"{count(len(self.buffer), 'byte', 'bytes')} outside a frame")
            break
        deadline = time.monotonic() + self.message_timeout
        searched = 1
        while True:
            end = self.buffer.find(END, searched)
            restart = self.buffer.find(START, 1, end if end != -1 else len(self.buffer))
            if restart != -1:  # a new frame began before this one ended
                self.truncated.append(bytes(self.buffer[1:min(restart, KEPT_OF_A_REJECTED_FRAME)]))
                del self.buffer[:restart]
                searched = 1
                continue
            if end != -1:
                if end + 1 == len(self.buffer):  # <FS> seen, its <CR> may be on its way
                    try:
                        self._receive(min(LONE_END_WAIT_SECONDS, deadline - time.monotonic()), inside_frame=True)
                    except (TimeoutError, PeerClosed):
                        pass
                frame = bytes(self.buffer[1:end])
                skip = end + 2 if self.buffer[end + 1:end + 2] == CR else end + 1
                del self.buffer[:skip]
                return frame
            if len(self.buffer) - 1 > self.max_bytes:
                raise FrameTooLarge(bytes(self.buffer[1:KEPT_OF_A_REJECTED_FRAME]))
            searched = max(1, len(self.buffer))
            self._receive(deadline - time.monotonic(), inside_frame=True)


def reject(prefix: bytes, reason: str, peer: str) -> bytes:
    """An AR for a frame we will not read whole (too large, truncated): addressed from its MSH
    if that much of it arrived; logged like any other message."""
    first_segment = prefix.split(b"\r", 1)[0]
    parsed = None
    charset = None
    try:
        parsed, charset = codec.parse(first_segment)
    except codec.Unreadable as error:
        parsed = error.header
    ack_text, ack_bytes = codec.build_ack("AR", parsed, reason, charset)
    try:
        Message.objects.create(peer=peer[:64], raw=prefix, text=prefix.decode(charset or "latin-1", "replace"),
                               status=Message.Status.REJECTED, reason=reason, ack=ack_text,
                               message_type=(f"{parsed.message_type}^{parsed.trigger}".strip("^") if parsed else "")[:32],
                               control_id=(parsed.control_id if parsed else "")[:64])
    except Exception:
        log.exception("hl7 rejected frame not logged peer=%s", peer)
    log.warning("hl7 frame rejected peer=%s reason=%s", peer, reason)
    return ack_bytes


def framed(payload: bytes) -> bytes:
    return START + payload + END + CR


class ConnectionHandler(MLLPRequestHandler):
    """One MLLP connection: frames in, ACKs out, until the peer closes or a limit ends it."""

    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def handle(self):
        sock, peer = self.request, self.client_address[0]
        if not self.server.admit():
            log.warning("hl7 connection refused peer=%s reason=too many connections", peer)
            return
        reader = FrameReader(sock, settings.PACS_HL7_MAX_MESSAGE_BYTES, settings.PACS_HL7_MESSAGE_TIMEOUT,
                             settings.PACS_HL7_IDLE_TIMEOUT)
        log.info("hl7 connection opened peer=%s", peer)
        try:
            while True:
                try:
                    frame = reader.next_frame()
                except FrameTooLarge as error:
                    limit = settings.PACS_HL7_MAX_MESSAGE_BYTES
                    sock.sendall(framed(reject(error.prefix, f"message larger than the limit of {limit} bytes", peer)))
                    return
                finally:
                    while reader.truncated:
                        sock.sendall(framed(reject(reader.truncated.pop(0), "truncated frame (a new one began)", peer)))
                sock.sendall(framed(handle(frame, peer)))
        except PeerClosed as closed:
            if closed.inside_frame:
                log.warning("hl7 connection closed inside a frame peer=%s", peer)
        except TimeoutError as error:
            log.warning("hl7 connection timed out peer=%s reason=%s", peer, error)
        except FramingError as error:
            log.warning("hl7 framing error peer=%s reason=%s: closing", peer, error)
        except OSError as error:
            log.info("hl7 connection lost peer=%s: %s", peer, error)
        finally:
            self.server.leave()
            log.info("hl7 connection closed peer=%s", peer)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        connections.close_all()  # this thread's database connection ends with it


class HL7Server(MLLPServer):
    """hl7apy's MLLP server with our connection handler; binds its port, or serves the
    listening socket the supervisor opened (`listen_fd`)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, listen_fd: int | None = None, max_connections: int | None = None):
        self.listen_fd = listen_fd
        self.max_connections = max_connections or settings.PACS_HL7_MAX_CONNECTIONS
        self.open_connections = 0
        self._lock = threading.Lock()
        super().__init__(host, port, handlers={}, timeout=settings.PACS_HL7_IDLE_TIMEOUT,
                         request_handler_class=ConnectionHandler)

    def server_bind(self):
        if self.listen_fd is None:
            super().server_bind()
            return
        self.socket.close()
        self.socket = socket.socket(fileno=self.listen_fd)
        self.server_address = self.socket.getsockname()

    def server_activate(self):
        if self.listen_fd is None:
            super().server_activate()

    def admit(self) -> bool:
        with self._lock:
            if self.open_connections >= self.max_connections:
                return False
            self.open_connections += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.open_connections -= 1

    def handle_error(self, request, client_address):
        log.exception("hl7 connection from %s failed", client_address)


def start_listener(port: int, host: str = "0.0.0.0", listen_fd: int | None = None) -> HL7Server:
    """A listener serving in a background thread (tests, `runhl7`)."""
    connections.close_all()
    server = HL7Server(host, port, listen_fd=listen_fd)
    threading.Thread(target=server.serve_forever, name=f"hl7-{port}", daemon=True).start()
    log.info("hl7 listener listening port=%d max_message_bytes=%d", server.server_address[1],
             settings.PACS_HL7_MAX_MESSAGE_BYTES)
    return server


def serve_until_signalled(port: int, listen_fd: int | None = None) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start_listener(port, listen_fd=listen_fd)
    stop.wait()
    log.info("hl7 listener stopping port=%d", port)
    server.shutdown()
    server.server_close()
