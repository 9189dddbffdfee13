"""`manage.py runpacs`: starts the DICOM SCP instances as child processes, restarts a child that
dies, and stops every child on SIGTERM."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers import echo_status, free_port, server_env

START_TIMEOUT = 30
RESTART_TIMEOUT = 10
STOP_TIMEOUT = 15
CHILD_STARTED = re.compile(r"child started name=(?P<name>\S+) pid=(?P<pid>\d+)")


class Runpacs:
    """`manage.py runpacs --only dicom` in its own session; its output goes to a file."""

    def __init__(self, log_path: Path, **env: str):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "runpacs", "--only", "dicom"],
                env=server_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its children share its process group: killable at once
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children_started(self) -> list[tuple[str, int]]:
        return [(m["name"], int(m["pid"])) for m in CHILD_STARTED.finditer(self.output)]

    def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            assert self.process.poll() is None, f"runpacs exited ({self.process.returncode}):\n{self.output[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {what} within {timeout}s; runpacs said:\n{self.output[-3000:]}")

    def session_pids(self) -> list[int]:
        """Every live process of runpacs' session (itself and whatever it started)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            state, session = fields[0], int(fields[3])
            if session == self.process.pid and state != "Z":
                pids.append(int(entry.name))
        return pids

    def kill_everything(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


@pytest.fixture
def start_runpacs(transactional_db, tmp_path):
    started: list[Runpacs] = []

    def start(**env: str) -> Runpacs:
        started.append(Runpacs(tmp_path / f"runpacs-{len(started) + 1}.log", **env))
        return started[-1]

    yield start
    for runpacs in started:
        runpacs.kill_everything()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_killed_scp_child_is_restarted_and_sigterm_stops_everything(start_runpacs):
    port = free_port()
    runpacs = start_runpacs(PACS_DICOM_PORT=str(port), PACS_SCP_WORKERS="1", PACS_AE_TITLE="PACSONE")
    child_name = f"dicom:PACSONE:{port}#1"

    ((name, first_pid),) = runpacs.wait_for(runpacs.children_started, START_TIMEOUT, "child started")
    assert name == child_name
    runpacs.wait_for(lambda: echo_status(port) == 0x0000, START_TIMEOUT, "C-ECHO answer")

    os.kill(first_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    started = runpacs.wait_for(
        lambda: runpacs.children_started()[1:], RESTART_TIMEOUT, "second 'child started' line"
    )
    runpacs.wait_for(lambda: echo_status(port) == 0x0000, RESTART_TIMEOUT, "C-ECHO answer after the restart")
    assert time.monotonic() - killed_at < RESTART_TIMEOUT + 1

    ((name, second_pid),) = started
    assert name == child_name and second_pid != first_pid
    assert alive(second_pid) and not alive(first_pid)
    assert re.search(rf"child died name={re.escape(child_name)} exit=-9 ", runpacs.output), runpacs.output
    assert sorted(runpacs.session_pids()) == sorted([runpacs.process.pid, second_pid])

    runpacs.process.send_signal(signal.SIGTERM)
    assert runpacs.process.wait(timeout=STOP_TIMEOUT) == 0, runpacs.output[-3000:]
    assert not alive(second_pid)
    assert runpacs.session_pids() == []
    assert "supervisor stopping signal=SIGTERM" in runpacs.output
    assert re.search(r"supervisor stopped pid=\d+", runpacs.output)
    assert echo_status(port) is None  # nothing listens any more


def test_several_dicom_instances_run_side_by_side(start_runpacs):
    port_a, port_b = free_port(), free_port()
    while port_b == port_a:
        port_b = free_port()
    runpacs = start_runpacs(PACS_DICOM_INSTANCES=f"AETA:{port_a},AETB:{port_b}", PACS_SCP_WORKERS="1")

    for ae_title, port in (("AETA", port_a), ("AETB", port_b)):
        line = f"dicom scp listening ae={ae_title} port={port} "
        runpacs.wait_for(lambda: line in runpacs.output, START_TIMEOUT, f"'{line.strip()}' line")
        runpacs.wait_for(lambda: echo_status(port, ae_title) == 0x0000, START_TIMEOUT, f"C-ECHO from {ae_title}")

    names = sorted(name for name, _pid in runpacs.children_started())
    assert names == [f"dicom:AETA:{port_a}#1", f"dicom:AETB:{port_b}#1"]
    runpacs.process.send_signal(signal.SIGTERM)
    assert runpacs.process.wait(timeout=STOP_TIMEOUT) == 0, runpacs.output[-3000:]
    assert runpacs.session_pids() == []


def test_scp_children_do_not_outlive_a_killed_supervisor(start_runpacs):
    port = free_port()
    runpacs = start_runpacs(PACS_DICOM_PORT=str(port), PACS_SCP_WORKERS="1")
    ((_name, child_pid),) = runpacs.wait_for(runpacs.children_started, START_TIMEOUT, "child started")
    runpacs.wait_for(lambda: echo_status(port) == 0x0000, START_TIMEOUT, "C-ECHO answer")

    runpacs.process.send_signal(signal.SIGKILL)
    runpacs.process.wait(timeout=10)

    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child_pid), "the SCP child outlived its supervisor"
    assert echo_status(port) is None


def test_background_work_runs_at_a_lower_priority_than_receiving(tmp_path, settings):
    """The task cluster (thumbnails, routing and their job processes) is niced by PACS_TASK_NICE;
    the DICOM and web children are not."""
    from pacsone.supervisor import Child, default_children

    base = os.nice(0)
    settings.PACS_TASK_NICE = 7
    children = {child.name.split(":")[0]: child for child in default_children({"tasks", "web"})}
    assert (children["tasks"].nice, children["web"].nice) == (7, 0)

    written = tmp_path / "nice.txt"
    child = Child("tasks", ["sh", "-c", f"nice > {written}"], nice=children["tasks"].nice)
    child.start()
    assert child.process.wait(timeout=10) == 0
    assert int(written.read_text()) == min(base + 7, 19)
