"""A logging handler that sends RFC 5424 syslog messages over UDP or TCP (PACS_SYSLOG_URL).

Python's SysLogHandler writes the older BSD format; a SIEM or a remote rsyslog expects RFC 5424
(`<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`), and over TCP the octet-counting framing of
RFC 6587. This module imports nothing from Django: the logging configuration builds it.
"""

import datetime
import logging
import os
import socket

FACILITY_AUTHPRIV = 10  # security/authorization messages (RFC 5424 table 1)
SEVERITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
APP_NAME = "pacsone"
CONNECT_TIMEOUT_SECONDS = 5


def rfc5424(record: logging.LogRecord, hostname: str, message: str, msgid: str = "-") -> bytes:
    severity = SEVERITY.get(record.levelno, 6)
    timestamp = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(timespec="microseconds")
    header = f"<{FACILITY_AUTHPRIV * 8 + severity}>1 {timestamp.replace('+00:00', 'Z')} {hostname or '-'} " \
             f"{APP_NAME} {record.process or os.getpid()} {msgid} -"
    return f"{header} {message}".encode("utf-8")


class Rfc5424Handler(logging.Handler):
    """One datagram (UDP) or one octet-counted frame (TCP) per record. A syslog server that is
    down costs a logged error, never the journal entry whose head it carries."""

    def __init__(self, protocol: str, host: str, port: int, msgid: str = "journal-head"):
        super().__init__()
        self.protocol, self.address, self.msgid = protocol, (host, port), msgid
        self.hostname = socket.gethostname()
        self.sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self.sock is None:
            if self.protocol == "udp":
                self.sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET,
                                          socket.SOCK_DGRAM)
            else:
                self.sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_SECONDS)
        return self.sock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload = rfc5424(record, self.hostname, self.format(record), self.msgid)
            if self.protocol == "udp":
                self._socket().sendto(payload, self.address)
            else:
                self._socket().sendall(f"{len(payload)} ".encode() + payload)
        except OSError:
            self.close_socket()
            self.handleError(record)

    def close_socket(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def close(self) -> None:
        self.close_socket()
        super().close()
