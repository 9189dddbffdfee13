"""The engine cannot be stalled or starved: deadlines (negotiation, each PDU, idle), the cap on
associations, message size caps, a failing service, the temp folder sweep, the thread pool,
memory during large retrieves, and a second server on a busy port."""

import logging
import os
import socket
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from pacsone.dicom import qr
from pacsone.dicom import scp as scp_server
from pacsone.dicom.net import commands, wire
from pacsone.dicom.net.requestor import StoreAssociation
from pacsone.dicom.pool import ThreadPool
from pacsone.dicom.scp import start_server, stop_server, sweep_temp_folder
from pacsone.ingest import Origin, ingest_file
from pacsone.models import Instance
from pacsone.supervisor import PortInUse, open_listening_socket
from tests.helpers import echo_status, free_port, make_dataset, rejection
from tests.pacsone.dicom.qr_archive import identifier
from tests.pacsone.dicom.test_cmove_cget import start_storescp
from tests.pacsone.dicom.test_engine import answer_to, open_association, temp_files

SERVICE_FAILED = 0xC211


@pytest.fixture
def start_scp(transactional_db, settings):
    """Start an SCP with some settings changed: start_scp(PACS_...=value) -> port."""
    servers = []

    def start(**overrides) -> int:
        # These tests are about the engine, not about who may query (test_dicom_access.py).
        overrides.setdefault("PACS_DICOM_QUERY_POLICY", "open")
        for name, value in overrides.items():
            setattr(settings, name, value)
        port = free_port()
        servers.append(start_server("PACSONE", port, host="127.0.0.1"))
        return port

    yield start
    for server in servers:
        stop_server(server, grace_seconds=1)


def trickle(sock: socket.socket, stop: threading.Event, interval: float = 0.1) -> threading.Thread:
    """Send one byte every `interval` until stopped or the connection breaks."""

    def run():
        while not stop.is_set():
            try:
                sock.send(b"\0")
            except OSError:
                return
            time.sleep(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def aborted_within(connection: wire.Connection, stop: threading.Event) -> float:
    started = time.monotonic()
    try:
        assert answer_to(connection) in (wire.A_ABORT, None)
        return time.monotonic() - started
    finally:
        stop.set()


# --- Deadlines -------------------------------------------------------------------------------------


def test_it_aborts_a_peer_that_trickles_a_pdu_within_the_pdu_deadline(start_scp):
    port = start_scp(PACS_DICOM_PDU_TIMEOUT=1)
    association = open_association(port)
    association.connection.sock.sendall(struct.pack(">BxL", wire.P_DATA_TF, 500))
    stop = threading.Event()
    trickle(association.connection.sock, stop)
    assert aborted_within(association.connection, stop) < 2.5  # 500 bytes would take 50 s
    assert echo_status(port) == 0x0000


def test_it_aborts_a_peer_that_trickles_its_association_request(start_scp):
    port = start_scp(PACS_DICOM_ACSE_TIMEOUT=1)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(struct.pack(">BxL", wire.A_ASSOCIATE_RQ, 300))
    stop = threading.Event()
    trickle(sock, stop)
    assert aborted_within(wire.Connection(sock, 0), stop) < 2.5
    sock.close()
    assert echo_status(port) == 0x0000


def test_it_aborts_a_message_whose_next_fragment_does_not_come(start_scp):
    port = start_scp(PACS_DICOM_PDU_TIMEOUT=1)
    association = open_association(port)
    context = association.context_for(CTImageStorage, [ExplicitVRLittleEndian])
    association.connection.send_message(context.context_id, commands.store_request(1, CTImageStorage, "1.2.3.4"))
    started = time.monotonic()
    assert answer_to(association.connection) == wire.A_ABORT  # the data set never starts
    assert time.monotonic() - started < 2.5
    while temp_files():  # removed right after the abort went out
        assert time.monotonic() - started < 5
        time.sleep(0.05)


def test_it_aborts_an_association_idle_past_the_idle_deadline(start_scp, caplog):
    port = start_scp(PACS_DICOM_IDLE_TIMEOUT=1)
    association = open_association(port)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pacsone.dicom.net.acceptor"):
        assert answer_to(association.connection) == wire.A_ABORT
    assert 0.9 < time.monotonic() - started < 2.5
    assert "deadline missed" in caplog.text and "no PDU began within 1s" in caplog.text


# --- The cap on associations ---------------------------------------------------------------------------


def associate(port: int):
    ae = AE(ae_title="FLOOD")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="PACSONE")


def test_it_rejects_associations_beyond_the_cap_while_the_others_work(start_scp):
    port = start_scp(PACS_DICOM_MAX_ASSOCIATIONS=2)
    held = [associate(port) for _ in range(2)]
    assert all(assoc.is_established for assoc in held)
    try:
        for _ in range(scp_server.REJECTING_AT_ONCE):
            # transient, service provider (presentation related), local limit exceeded
            assert rejection(port, "FLOOD") == (0x02, 0x03, 0x02)
        for assoc in held:
            assert assoc.send_c_echo().Status == 0x0000
    finally:
        for assoc in held:
            assoc.release()
    deadline = time.monotonic() + 5
    while echo_status(port) != 0x0000:  # the released ones free their places a moment later
        assert time.monotonic() < deadline
        time.sleep(0.1)


# --- Message sizes -------------------------------------------------------------------------------------


def test_it_aborts_a_c_find_identifier_over_the_cap(start_scp, caplog):
    port = start_scp(PACS_DICOM_MAX_IDENTIFIER_BYTES=4096)
    association = StoreAssociation("127.0.0.1", port, "BREAKER", "PACSONE",
                                   [build_context(StudyRootQueryRetrieveInformationModelFind, [ImplicitVRLittleEndian])],
                                   16384, timeout=5)
    association.open()
    context_id = next(iter(association.contexts))
    command = commands.encode({commands.AFFECTED_SOP_CLASS_UID: StudyRootQueryRetrieveInformationModelFind,
                               commands.COMMAND_FIELD: commands.C_FIND_RQ, commands.MESSAGE_ID: 1,
                               commands.PRIORITY: 0, commands.COMMAND_DATA_SET_TYPE: commands.HAS_DATA_SET})
    connection = association.connection
    connection.send_message(context_id, command)
    with caplog.at_level(logging.WARNING, logger="pacsone.dicom.net.acceptor"):
        try:
            for _ in range(64):  # never-last fragments of 1 kB: 64 kB if nobody stopped it
                connection._send_parts(connection._fragments(context_id, 0, bytes(1024), final=False))
        except OSError:
            pass  # already aborted
        assert answer_to(connection) in (wire.A_ABORT, None)
    assert "over the limit of 4096 bytes" in caplog.text
    assert echo_status(port) == 0x0000


def test_it_aborts_a_command_set_over_the_cap(start_scp):
    port = start_scp(PACS_DICOM_MAX_COMMAND_BYTES=1024)
    association = open_association(port)
    context = association.context_for(CTImageStorage, [ExplicitVRLittleEndian])
    connection = association.connection
    for _ in range(3):
        connection._send_parts(connection._fragments(context.context_id, wire.COMMAND, bytes(512), final=False))
    assert answer_to(connection) == wire.A_ABORT
    assert echo_status(port) == 0x0000


# --- A service that fails ---------------------------------------------------------------------------


def test_a_failing_c_store_answers_0xc211_leaves_no_temp_file_and_the_association_goes_on(scp, monkeypatch):
    _ae, port = scp

    def broken_ingest(*args, **kwargs):
        raise RuntimeError("the index is on fire")

    monkeypatch.setattr(scp_server, "ingest_file", broken_ingest)
    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    try:
        assert assoc.send_c_store(make_dataset()).Status == SERVICE_FAILED
        assert temp_files() == []
        assert assoc.send_c_echo().Status == 0x0000
        monkeypatch.undo()
        assert assoc.send_c_store(make_dataset()).Status == 0x0000
    finally:
        assoc.release()
    assert Instance.objects.count() == 1


def test_a_failing_c_find_answers_0xc211_and_the_association_goes_on(scp, monkeypatch):
    _ae, port = scp

    def broken_policy(assoc):
        raise RuntimeError("the registry is on fire")

    monkeypatch.setattr(qr, "_access", broken_policy)
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    try:
        statuses = [status.Status for status, _ in
                    assoc.send_c_find(identifier("STUDY", PatientID="*"), StudyRootQueryRetrieveInformationModelFind)]
        assert statuses == [SERVICE_FAILED]
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


# --- Running --------------------------------------------------------------------------------------------


def test_it_sweeps_old_temp_files_while_running(scp, settings):
    folder = settings.STORAGE_DIR / "tmp"
    old, fresh = folder / "123-1-dead.dcm", folder / "123-2-live.dcm"
    old.write_bytes(b"left by a crash")
    fresh.write_bytes(b"being received")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert sweep_temp_folder(folder) == 1
    assert not old.exists() and fresh.exists()


def test_the_server_sweeps_when_its_time_comes(transactional_db, settings):
    server = start_server("PACSONE", free_port(), host="127.0.0.1")
    try:
        old = server.temp_folder / "1-1-old.dcm"
        old.write_bytes(b"x")
        os.utime(old, (0, 0))
        server._next_sweep = 0
        deadline = time.monotonic() + 5
        while old.exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop_server(server, grace_seconds=1)


def test_idle_pool_threads_run_their_cleanup_and_end():
    cleaned = []
    pool = ThreadPool(2, idle_seconds=0.2, on_idle=lambda: cleaned.append(threading.current_thread().name))
    done = threading.Event()
    for _ in range(3):
        pool.submit(time.sleep, 0.05)
    pool.submit(done.set)
    assert done.wait(5)
    assert pool.threads <= 2
    deadline = time.monotonic() + 5
    while pool.threads:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert 1 <= len(cleaned) <= 2
    pool.submit(done.clear)  # a new thread starts for new work
    deadline = time.monotonic() + 5
    while done.is_set():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_closed_pool_ends_its_threads_after_their_work_without_waiting_for_the_idle_time():
    cleaned = []
    pool = ThreadPool(3, idle_seconds=600, on_idle=lambda: cleaned.append(threading.current_thread().name))
    finished = []
    for number in range(3):
        pool.submit(lambda n=number: (time.sleep(0.1), finished.append(n)))
    pool.close()
    deadline = time.monotonic() + 5
    while pool.threads:
        assert time.monotonic() < deadline, "a stopped server's threads (and database connections) linger"
        time.sleep(0.05)
    assert sorted(finished) == [0, 1, 2] and len(cleaned) == 3  # the work done first, then each cleaned up


def test_a_second_server_on_a_busy_port_fails_with_a_clear_message(scp):
    _ae, port = scp
    with pytest.raises(PortInUse, match=f"port {port} is already in use by another program"):
        start_server("PACSONE", port, host="127.0.0.1")
    with pytest.raises(PortInUse, match=f"port {port} is already in use"):
        open_listening_socket(port)
    assert echo_status(port) == 0x0000  # the first one is untouched


# --- Memory during large retrieves -------------------------------------------------------------------


FRAMES = 200  # 200 frames of 512 x 512 x 16 bits: 100 MB of pixel data


def large_instance(folder, study_uid: str, compressed: bool):
    ds = make_dataset(study_uid=study_uid, rows=512)
    ds.Columns = 512
    frame = (np.arange(512 * 512, dtype=np.int32) % 2000).astype(np.int16).reshape(512, 512)
    if compressed:  # RLE: one frame encoded, repeated (decompresses to 100 MB)
        ds.compress(RLELossless, frame, encoding_plugin="pylibjpeg")
        encoded = next(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([encoded] * FRAMES)
    else:
        ds.PixelData = np.broadcast_to(frame, (FRAMES, 512, 512)).tobytes()
    ds.NumberOfFrames = FRAMES
    path = folder / f"{study_uid}.dcm"
    ds.save_as(path, enforce_file_format=True)
    del ds
    result = ingest_file(path, Origin("import"))
    assert result.outcome.accepted, result.reason
    path.unlink()


@pytest.mark.peers
def test_memory_stays_flat_during_four_large_c_moves(scp, tmp_path, settings):
    _ae, port = scp
    settings.PACS_DICOM_QUERY_POLICY = "open"  # about memory, not about who may retrieve
    large_instance(tmp_path, "1.2.826.0.1.3680043.99.1", compressed=False)  # sent as stored
    large_instance(tmp_path, "1.2.826.0.1.3680043.99.2", compressed=True)  # storescp takes no RLE: decompressed
    _dest_port, storescp = start_storescp(tmp_path / "received", "+uf")
    statuses = []

    def move(study_uid: str) -> None:
        ae = AE(ae_title="MOVESCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        ae.dimse_timeout = ae.network_timeout = 60
        assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
        try:
            responses = list(assoc.send_c_move(identifier("STUDY", StudyInstanceUID=study_uid), "STORESCP",
                                               StudyRootQueryRetrieveInformationModelMove))
            statuses.append(responses[-1][0].Status)
        finally:
            assoc.release()

    try:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        threads = [threading.Thread(target=move, args=(f"1.2.826.0.1.3680043.99.{1 + i % 2}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
        storescp.kill()
        storescp.wait(timeout=10)
    assert statuses == [0x0000] * 4
    received = list((tmp_path / "received").iterdir())
    assert len(received) == 4 and all(path.stat().st_size > 100_000_000 for path in received)
    # Each retrieve moves 100 MB; all four together hold a few MB (a frame, a batch, a PDU each).
    assert peak < 32_000_000, f"peak {peak / 1e6:.1f} MB"
