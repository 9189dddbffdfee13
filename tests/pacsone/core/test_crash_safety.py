"""A real SCP worker process (`manage.py runscp`) killed with SIGKILL in the middle of an ingest
loses nothing it acknowledged with Success (DESIGN.md invariant 1), and starts again on the
same data."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from pacsone import storage
from pacsone.models import Instance
from tests.helpers import echo_status, free_port, make_dataset, server_env

INSTANCES = 200
KILL_AFTER = 50
START_TIMEOUT = 30
NETWORK_TIMEOUT = 10


class ScpProcess:
    """`manage.py runscp` as a child process; its output goes to a file (no pipe to fill)."""

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "ScpProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "runscp",
                 "--ae-title", "PACSONE", "--port", str(self.port)],
                env=server_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for_echo(self.port, self.process, self.log_path)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Kill it if it still runs (always called in teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)


def wait_for_echo(port: int, process: subprocess.Popen, log_path: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"runscp exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if echo_status(port) == 0x0000:
            return
        time.sleep(0.2)
    raise AssertionError(f"runscp did not answer C-ECHO within {timeout}s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture
def scp_processes(transactional_db, tmp_path):
    """Start runscp processes on one port; every one of them is killed at teardown."""
    port = free_port()
    started: list[ScpProcess] = []

    def start() -> ScpProcess:
        started.append(ScpProcess(port, tmp_path / f"runscp-{len(started) + 1}.log").start())
        return started[-1]

    yield start
    for scp in started:
        scp.stop()


def store_until_killed(port: int, datasets: list, on_success=lambda count: None) -> tuple[list[str], bool]:
    """Send each data set on one association; the SOP Instance UIDs answered Success, and
    whether the association broke before the end."""
    ae = AE(ae_title="CRASHTEST")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    acknowledged = []
    try:
        for ds in datasets:
            if not assoc.is_established:
                return acknowledged, True
            rsp = assoc.send_c_store(ds)
            if "Status" not in rsp:
                # No answer: the connection is gone. (Sending on before pynetdicom has marked
                # the association aborted would wait out the DIMSE timeout.)
                return acknowledged, True
            if rsp.Status == 0x0000:
                acknowledged.append(ds.SOPInstanceUID)
                on_success(len(acknowledged))
        return acknowledged, False
    finally:
        if assoc.is_established:
            assoc.abort()


def test_instances_acknowledged_before_a_sigkill_are_all_kept(scp_processes):
    scp = scp_processes()
    study_uid = generate_uid()
    series = [generate_uid() for _ in range(4)]
    datasets = [
        make_dataset(study_uid=study_uid, series_uid=series[n % 4], rows=64, InstanceNumber=n + 1)
        for n in range(INSTANCES)
    ]
    enough = threading.Event()
    sending_done = threading.Event()

    def kill_when_enough() -> None:
        enough.wait(timeout=120)
        if not sending_done.is_set():
            scp.process.send_signal(signal.SIGKILL)

    def on_success(count: int) -> None:
        if count == KILL_AFTER:
            enough.set()  # the killer fires while the next stores are in flight

    killer = threading.Thread(target=kill_when_enough, name="killer", daemon=True)
    killer.start()
    try:
        acknowledged, broken = store_until_killed(scp.port, datasets, on_success)
    finally:
        sending_done.set()
        enough.set()
        killer.join(timeout=10)

    assert scp.process.wait(timeout=10) == -signal.SIGKILL
    assert broken, "the association outlived the SCP process"
    assert KILL_AFTER <= len(acknowledged) < INSTANCES
    assert acknowledged == [ds.SOPInstanceUID for ds in datasets[: len(acknowledged)]]
    # Every acknowledged instance is indexed, and its file is there with its checksum.
    indexed = {i.sop_instance_uid: i for i in Instance.objects.filter(sop_instance_uid__in=acknowledged)}
    assert sorted(set(acknowledged) - set(indexed)) == []
    for uid in acknowledged:
        instance = indexed[uid]
        path = storage.absolute_path(instance.storage_location, instance.file_path)
        assert path.is_file(), f"{uid} was acknowledged but its file is missing"
        assert storage.checksum(path) == (instance.sha256, instance.file_size)
    # No index row of any instance (acknowledged or not) points at a missing or torn file.
    for instance in Instance.objects.all():
        path = storage.absolute_path(instance.storage_location, instance.file_path)
        assert storage.checksum(path) == (instance.sha256, instance.file_size)


def test_a_new_scp_process_serves_the_same_data_after_a_sigkill(scp_processes):
    first = scp_processes()
    before = make_dataset()
    acknowledged, _ = store_until_killed(first.port, [before])
    assert acknowledged == [before.SOPInstanceUID]
    first.process.send_signal(signal.SIGKILL)
    assert first.process.wait(timeout=10) == -signal.SIGKILL

    second = scp_processes()  # same port, same database and data folder
    after = make_dataset(study_uid=Instance.objects.get().series.study.study_instance_uid)
    acknowledged, broken = store_until_killed(second.port, [after])

    assert echo_status(second.port) == 0x0000
    assert (acknowledged, broken) == ([after.SOPInstanceUID], False)
    assert Instance.objects.count() == 2
    for instance in Instance.objects.all():
        path = storage.absolute_path(instance.storage_location, instance.file_path)
        assert storage.checksum(path) == (instance.sha256, instance.file_size)
    # A polite stop still works for the new process.
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(timeout=20) == 0
