"""The supervisor behind `manage.py runpacs`: starts the server's processes and keeps them up.

Children: the web server (gunicorn), the DICOM SCP workers of every configured instance, the
HL7 MLLP listener and the django-q2 cluster. A child that dies is started again after a short back-off (logged);
SIGTERM or Ctrl-C stops them all, politely first. Its children's state goes to a status file in
the data folder and, as this node's heartbeat, to the Node table (pacsone/nodes.py).
"""

import ctypes
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings

log = logging.getLogger("pacsone.supervisor")

POLL_SECONDS = 0.5
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if the supervisor itself is killed, so none is orphaned."""
    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    restarts: int = field(default=0)
    pass_fds: tuple[int, ...] = ()
    started_wall: float = 0.0
    last_exit: int | None = None
    nice: int = 0  # added to the process's nice value (its children inherit it)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, preexec_fn=self._prepare, pass_fds=self.pass_fds)
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        log.info("child started name=%s pid=%d", self.name, self.process.pid)

    def _prepare(self) -> None:
        """In the child, before it runs its program."""
        _die_with_parent()
        if self.nice:
            os.nice(self.nice)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict:
        return {
            "name": self.name,
            "pid": self.process.pid if self.process else None,
            "running": self.running,
            "started": self.started_wall,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


def status_path():
    """Where the supervisor publishes its children's state (read by the live monitor)."""
    return settings.DATA_DIR / "run" / "supervisor.json"


def write_status(children: list[Child], stopping: bool = False) -> None:
    path = status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"pid": os.getpid(), "updated": time.time(), "stopping": stopping,
            "children": [child.status() for child in children]}
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(body))
    os.replace(temp, path)


class PortInUse(Exception):
    """Another program listens on a port we were to serve: starting anyway would split the
    associations between two archives (or serve none)."""

    def __init__(self, port: int, kind: str = "a DICOM", variables: str = "PACS_DICOM_PORT, PACS_DICOM_INSTANCES"):
        super().__init__(f"port {port} is already in use by another program (another PacsOne, or {kind} "
                         f"server?): stop it, or choose another port ({variables})")
        self.port = port


def open_listening_socket(port: int, host: str = "0.0.0.0") -> socket.socket:
    """The socket that the SCP workers of one port share; it outlives any of them. SO_REUSEADDR
    only rebinds over connections in TIME_WAIT, and no SO_REUSEPORT: a port another program
    listens on raises PortInUse."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(port) from None
        raise
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def manage_py(*args: str) -> list[str]:
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), *args]


def web_command(port: int, host: str = "0.0.0.0") -> list[str]:
    """gunicorn with the worker class that a slow client cannot hold (pacsone/gunicorn_worker.py)."""
    return [
        sys.executable, "-m", "gunicorn", "pacsone.wsgi:application",
        "--bind", f"{host}:{port}",
        "--worker-class", "pacsone.gunicorn_worker.HeadFirstWorker",
        "--workers", str(settings.PACS_WEB_WORKERS),
        "--threads", str(settings.PACS_WEB_THREADS),
        "--timeout", "120",
        "--access-logfile", "-",
        "--chdir", str(settings.BASE_DIR),
    ]


def default_children(components: set[str]) -> list[Child]:
    children = []
    if "web" in components:
        children.append(Child("web", web_command(settings.PACS_WEB_PORT)))
    if "dicom" in components:
        for ae_title, port in settings.PACS_DICOM_INSTANCES:
            # One listening socket per port, opened here and kept open, shared by its workers
            # (and by the workers that replace them).
            listener = open_listening_socket(port)
            fd = listener.detach()
            argv = manage_py("runscp", "--ae-title", ae_title, "--port", str(port), "--listen-fd", str(fd))
            for worker in range(1, settings.PACS_SCP_WORKERS + 1):
                children.append(Child(f"dicom:{ae_title}:{port}#{worker}", argv, pass_fds=(fd,)))
    if "tasks" in components:
        children.append(Child("tasks", manage_py("qcluster"), nice=settings.PACS_TASK_NICE))
    if "hl7" in components:  # the MLLP listener (hl7/listener.py), on a socket that outlives it
        try:
            fd = open_listening_socket(settings.PACS_HL7_PORT).detach()
        except PortInUse:
            raise PortInUse(settings.PACS_HL7_PORT, "an HL7", "PACS_HL7_PORT") from None
        children.append(Child(f"hl7:{settings.PACS_HL7_PORT}", manage_py("runhl7", "--listen-fd", str(fd)), pass_fds=(fd,)))
    return children


class Supervisor:
    def __init__(self, children: list[Child], node: str = ""):
        self.children = children
        self.stopping = False
        self.node = node  # this node's row in the Node table (pacsone/nodes.py); "" writes none
        self.node_started = None
        self.next_heartbeat = 0.0

    def publish(self, stopping: bool = False) -> None:
        """The status file for this machine's monitor and, every heartbeat, the node's row."""
        write_status(self.children, stopping=stopping)
        if self.node and (stopping or time.monotonic() >= self.next_heartbeat):
            from django.utils import timezone

            from .nodes import heartbeat

            self.node_started = self.node_started or timezone.now()
            heartbeat(self.node, [child.status() for child in self.children], self.node_started, stopped=stopping)
            self.next_heartbeat = time.monotonic() + settings.PACS_NODE_HEARTBEAT_SECONDS

    def request_stop(self, signum, _frame) -> None:
        if not self.stopping:
            log.info("supervisor stopping signal=%s", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        for child in self.children:
            child.start()
        self.publish()
        while not self.stopping:
            if self.check_children() or time.monotonic() >= self.next_heartbeat:
                self.publish()
            time.sleep(POLL_SECONDS)
        self.stop_children()
        self.publish(stopping=True)

    def check_children(self) -> bool:
        """Restart children that died (after their back-off). True when something changed."""
        changed = False
        now = time.monotonic()
        for child in self.children:
            if child.running:
                if now - child.started_at > HEALTHY_AFTER_SECONDS:
                    child.backoff = FIRST_BACKOFF_SECONDS
                continue
            if child.restart_at == 0.0:
                code = child.process.returncode if child.process else None
                child.last_exit = code
                changed = True
                child.restart_at = now + child.backoff
                log.error("child died name=%s exit=%s restarting_in=%.1fs", child.name, code, child.backoff)
                child.backoff = min(child.backoff * 2, MAX_BACKOFF_SECONDS)
            elif now >= child.restart_at:
                child.restart_at = 0.0
                child.restarts += 1
                child.start()
                changed = True
        return changed

    def stop_children(self) -> None:
        running = [c for c in self.children if c.running]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("child did not stop in time name=%s pid=%d: killing", child.name, child.process.pid)
                child.process.kill()
                child.process.wait()
        log.info("supervisor stopped pid=%d", os.getpid())
