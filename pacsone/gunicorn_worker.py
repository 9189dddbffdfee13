"""The web server's worker class: gunicorn's threaded worker (gthread), with each request's
head read by the worker's event loop instead of by a thread.

Why: gthread hands a connection to a thread once its first bytes arrive, and the thread then
reads the rest of the head with blocking reads. Twelve clients sending their headers a byte a
second ("slowloris") held all 2 x 4 threads and /healthz stopped answering for as long as they
went on. Here the event loop gathers the head without blocking (a slow client costs a socket
and a buffer, not a thread) and only a complete head goes to a thread. A head that is not
complete within PACS_HTTP_HEADER_TIMEOUT seconds, or larger than MAX_HEAD_BYTES, is closed.
Once in a thread, every read and write of the socket waits at most PACS_HTTP_READ_TIMEOUT
seconds (the kernel's SO_RCVTIMEO / SO_SNDTIMEO), so a stalled body or a client that stops
reading frees its thread. A body trickled just faster than that still holds one thread: the
README says to put a reverse proxy in front when untrusted clients reach the port directly.

TLS served by gunicorn itself (--certfile) keeps gthread's own path: the head cannot be read
before the handshake. The supervisor starts gunicorn with this class (`make run`).
"""

import errno
import selectors
import socket
import struct
import time
from functools import partial

from gunicorn import http
from gunicorn.workers import gthread

# Browsers send heads of a few kB; cookies and long URLs stay far below this.
MAX_HEAD_BYTES = 64 * 1024
HEAD_END = b"\r\n\r\n"


def set_io_timeouts(sock: socket.socket, seconds: float) -> None:
    """A blocking recv() or send() on `sock` fails after `seconds` without progress."""
    timeval = struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class HeadFirstWorker(gthread.ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Connections whose head is still arriving: conn -> (deadline, bytes so far), oldest first.
        self.heads: dict[gthread.TConn, tuple[float, bytearray]] = {}
        self.header_timeout = 10.0
        self.read_timeout = 30.0
        # gunicorn's own cap on the request line (4094 bytes) answers a long search with a bare
        # "Request Line is too large"; the head is capped here (MAX_HEAD_BYTES), and Django
        # answers a line it will not serve with a styled 414 (pacsone/web/errors.py).
        self.cfg.set("limit_request_line", 0)

    def run(self):
        # The application (and so Django's settings) is loaded by now.
        from django.conf import settings

        self.header_timeout = float(settings.PACS_HTTP_HEADER_TIMEOUT)
        self.read_timeout = float(settings.PACS_HTTP_READ_TIMEOUT)
        super().run()

    def accept(self, listener):
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = gthread.TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._gather_head(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request: its head is gathered the same way."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._gather_head(conn)

    def _gather_head(self, conn) -> None:
        self.heads[conn] = (time.monotonic() + self.header_timeout, bytearray())
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def _read_head(self, conn, sock) -> None:
        _deadline, head = self.heads[conn]
        try:
            data = sock.recv(MAX_HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop_head(conn)
            return
        searched_from = max(0, len(head) - len(HEAD_END) + 1)
        head += data
        if head.find(HEAD_END, searched_from) >= 0:
            self._dispatch(conn, bytes(head))
        elif len(head) > MAX_HEAD_BYTES:
            self.log.info("request head over %d bytes from %s: closed", MAX_HEAD_BYTES, conn.client)
            self._drop_head(conn)

    def _dispatch(self, conn, head: bytes) -> None:
        """Hand a connection with a complete head to a thread (as gthread's init() would)."""
        self.poller.unregister(conn.sock)
        del self.heads[conn]
        conn.sock.setblocking(True)
        set_io_timeouts(conn.sock, self.read_timeout)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.initialized = True
        conn.data_ready = True
        conn.parser.unreader.unread(head)
        self.enqueue_req(conn)

    def _drop_head(self, conn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        del self.heads[conn]
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, force=False):
        """Called by the event loop about once a second: also closes heads past their deadline."""
        super().murder_keepalived(force)
        now = time.monotonic()
        while self.heads:
            conn = next(iter(self.heads))
            if self.heads[conn][0] > now and not force:
                break
            self._drop_head(conn)
