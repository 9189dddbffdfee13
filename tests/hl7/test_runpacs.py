"""`manage.py runpacs` starts the MLLP listener as one of its children, restarts it when it
dies (on the same listening socket), and publishes it for the Monitor page."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from pacsone.monitor import process_states
from pacsone.supervisor import PortInUse, default_children, open_listening_socket
from tests.helpers import free_port, server_env

from .messages import Client, adt_a08, framed, msa

TIMEOUT = 60


def answered(port: int) -> bool:
    try:
        client = Client(port, timeout=5)
    except OSError:
        return False
    try:
        client.send(framed(adt_a08("NOBODY", "A^B", control_id="PING").encode()))
        ack = client.ack()
        return ack is not None and msa(ack)[1:3] == ["AA", "PING"]
    except OSError:
        return False
    finally:
        client.close()


def wait_for(predicate, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {TIMEOUT}s:\n{log.read_text(errors='replace')[-3000:]}")


def hl7_child(states: dict) -> dict | None:
    return next((child for child in states["children"] if child["name"].startswith("hl7:")), None)


def test_runpacs_starts_restarts_and_publishes_the_listener(transactional_db, tmp_path):
    port = free_port()
    log = tmp_path / "runpacs.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "runpacs", "--only", "hl7"],
                                   env=server_env(PACS_HL7_PORT=str(port)), stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: answered(port), "AA from the listener", process, log)
        first = wait_for(lambda: hl7_child(process_states()), "hl7 child in the status file", process, log)
        assert first["name"] == f"hl7:{port}" and first["running"]
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: (hl7_child(process_states()) or {}).get("restarts") == 1, "restart", process, log)
        wait_for(lambda: answered(port), "AA after the restart", process, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def test_a_port_in_use_stops_runpacs_at_start(settings):
    busy = open_listening_socket(free_port(), host="127.0.0.1")
    settings.PACS_HL7_PORT = busy.getsockname()[1]
    try:
        with pytest.raises(PortInUse, match="PACS_HL7_PORT"):
            default_children({"hl7"})
    finally:
        busy.close()
