"""Nodes of one archive started by the tests as real processes on this machine: each a
`manage.py runpacs --node NAME` with its own ports and data folder, all sharing the test
database, the storage folder, the shared folder and the keys; and a Redis database of their own
as broker and cache when Redis runs here (required under PACS_REQUIRE_PEERS=1)."""

import contextlib
import http.cookiejar
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit.chain import journal_key
from tests.helpers import REDIS_HOST, REDIS_PORT, echo_status, free_port, server_env

START_TIMEOUT = 90


def require_shared_database() -> None:
    """Several nodes need a database server: on SQLite (a file of one machine) there is nothing to test."""
    if connection.vendor == "sqlite":
        pytest.skip("several nodes share a database server: run with DATABASE_URL=postgres://... or mysql://... "
                    "(runpacs --node refuses SQLite)")


CLAIM_KEY = "pacsone-test-claim"


@contextlib.contextmanager
def claimed_redis_database():
    """A Redis database (1-14) of its own for one test's nodes: their django-q2 queue and cache
    meet no other test run's (CI runs three databases' suites side by side on one Redis). The
    claim key expires, so a killed run frees its database within the hour; emptied after use."""
    import redis

    for number in range(1, 15):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        if client.set(CLAIM_KEY, os.getpid(), nx=True, ex=3600):
            client.flushdb()
            client.set(CLAIM_KEY, os.getpid(), ex=3600)
            try:
                yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
            finally:
                client.flushdb()
            return
    raise AssertionError("every Redis database 1-14 is claimed by another test run")


class PacsNode:
    def __init__(self, name: str, root: Path, redis_url: str = "", **extra_env: str):
        self.name = name
        self.data_dir = root / name
        self.web_port, self.dicom_port, self.hl7_port = free_port(), free_port(), free_port()
        journal_key()  # the key file exists before the nodes read it
        env = server_env(
            PACS_STORAGE_DIR=str(root / "storage"),
            PACS_SHARED_DIR=str(root / "shared"), PACS_SECRET_KEY=settings.SECRET_KEY,
            PACS_JOURNAL_KEY_FILE=str(settings.PACS_JOURNAL_KEY_FILE),
            PACS_WEB_PORT=str(self.web_port), PACS_DICOM_PORT=str(self.dicom_port), PACS_HL7_PORT=str(self.hl7_port),
            PACS_SCP_WORKERS="1", PACS_WEB_WORKERS="1", PACS_WEB_THREADS="4", PACS_TASK_WORKERS="1",
            PACS_NODE_HEARTBEAT_SECONDS="2", PACS_JOB_LEASE_SECONDS="6", PACS_ROUTING_QUIET_SECONDS="1",
            **extra_env)
        env["PACS_DATA_DIR"] = str(self.data_dir)
        env["PACS_TASKS_SYNC"] = "false"  # a real django-q2 cluster, with its scheduler
        env.pop("PACS_REDIS_URL", None)
        if redis_url:  # the nodes' broker and cache; else the ORM broker in the test database
            env["PACS_REDIS_URL"] = redis_url
        self.env = env
        self.log_path = root / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PacsNode":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "runpacs", "--node", self.name],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # its children share its process group
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def wait_ready(self) -> "PacsNode":
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"node {self.name} exited:\n{self.output[-3000:]}"
            try:
                with urllib.request.urlopen(self.url + "/healthz/ready", timeout=2) as answer:
                    web = answer.status == 200
            except OSError:
                web = False
            if web and echo_status(self.dicom_port, timeout=2) == 0:
                return self
            time.sleep(0.3)
        raise AssertionError(f"node {self.name} not ready in {START_TIMEOUT}s:\n{self.output[-3000:]}")

    def runner_pids(self) -> list[int]:
        folder = self.data_dir / "run" / "job-runners"
        return [int(path.stem) for path in folder.glob("*.pid")] if folder.exists() else []

    def kill(self) -> None:
        """SIGKILL of everything the node runs (its machine dies): the supervisor's process group
        and the job runners, which live in sessions of their own."""
        if self.process is None:
            return
        runners = self.runner_pids()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in runners:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def node_user(username: str, privileges: list[str], password: str):
    """A user whose password the nodes can check: they hash with Django's default (PBKDF2), not
    with the fast hasher of the test settings."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from tests.people import make_user

    user = make_user(username, privileges)
    user.password = PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt())
    user.save(update_fields=["password"])
    return user


def logged_in(node: PacsNode, username: str, password: str) -> urllib.request.OpenerDirector:
    """An HTTP client logged in to `node`'s web server through its login form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(node.url + "/accounts/login/", timeout=10).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    opener.open(urllib.request.Request(node.url + "/accounts/login/", data=body,
                                       headers={"Referer": node.url + "/accounts/login/"}), timeout=10).read()
    assert any(cookie.name == "sessionid" for cookie in jar), "login failed"
    return opener


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"no {what} within {timeout}s")
