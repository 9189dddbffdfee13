"""The web server as `make run` starts it (the supervisor's gunicorn command line): slow
clients ("slowloris") cannot hold its threads, and ordinary requests still work."""

import http.client
import socket
import subprocess
import threading
import time

import pytest

from pacsone.supervisor import web_command
from tests.helpers import free_port, server_env

START_TIMEOUT = 60


@pytest.fixture
def web_server(transactional_db, tmp_path, settings):
    """gunicorn on a free port with 2 workers x 2 threads (so that 12 slow clients are 3x the
    threads) and a 2 s head timeout."""
    settings.PACS_WEB_WORKERS = 2
    settings.PACS_WEB_THREADS = 2
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")
    process = subprocess.Popen(web_command(port, host="127.0.0.1"), stdout=log, stderr=subprocess.STDOUT,
                               env=server_env(PACS_HTTP_HEADER_TIMEOUT="2", PACS_HTTP_READ_TIMEOUT="2"))
    deadline = time.monotonic() + START_TIMEOUT
    while healthz(port, timeout=2)[0] != 200:
        assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
        time.sleep(0.3)
    yield port
    process.terminate()
    process.wait(timeout=30)
    log.close()


def healthz(port: int, timeout: float = 5) -> tuple[int | None, float]:
    """(status, seconds) of GET /healthz; status None when it did not answer in time."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status, time.monotonic() - started
    except OSError:
        return None, time.monotonic() - started
    finally:
        connection.close()


class Slowloris:
    """Connections that send a request head one byte at a time and never finish it."""

    def __init__(self, port: int, count: int):
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._trickle, args=(s,), daemon=True) for s in self.sockets]
        for thread in self.threads:
            thread.start()

    def _trickle(self, sock: socket.socket) -> None:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            while not self.stop.wait(0.5):
                sock.sendall(b"X")
        except OSError:
            self.closed_by_server += 1

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def test_twelve_slow_clients_leave_healthz_answering(web_server):
    slow = Slowloris(web_server, 12)
    try:
        time.sleep(1)  # all twelve are in, trickling
        for _ in range(3):
            status, seconds = healthz(web_server)
            assert status == 200 and seconds < 2
    finally:
        slow.close()


def test_a_head_that_does_not_arrive_in_time_is_closed(web_server):
    slow = Slowloris(web_server, 3)
    try:
        deadline = time.monotonic() + 10
        while slow.closed_by_server < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slow.closed_by_server == 3  # cut after the 2 s head timeout
    finally:
        slow.close()


def test_kept_alive_connections_and_request_bodies_still_work(web_server):
    connection = http.client.HTTPConnection("127.0.0.1", web_server, timeout=10)
    try:
        for _ in range(2):  # two requests on one connection
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200 and b'"status": "ok"' in response.read()
        connection.request("POST", "/accounts/login/", body=b"username=x&password=y",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        assert response.status == 403  # a body read and answered (no CSRF cookie)
        response.read()
    finally:
        connection.close()
