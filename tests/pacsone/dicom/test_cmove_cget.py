"""C-MOVE and C-GET SCP: dcmtk's movescu (to dcmtk's storescp) and getscu, pynetdicom as a
second client; sub-operation counts, unknown destinations, transcoding, cancel, journal."""

import subprocess
import time

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from pacsone.dicom import qr
from pacsone.ingest import Origin, ingest_file
from pacsone.models import RemoteAE
from tests.helpers import dcmtk_program, echo_status, free_port, journaled, pydicom_file, rejection
from tests.pacsone.dicom.qr_archive import STUDY_A, identifier, make_archive
from tests.pacsone.dicom.test_dcmtk_interop import DCMTK_ENV, dcmtk, wait_for_port

A1 = STUDY_A + ".1"


@pytest.fixture
def archive_scp(scp, tmp_path, settings):
    """The archive, queried by any AE: these tests are about Q/R itself (who may ask, and what an
    AE linked to a user sees: test_dicom_access.py)."""
    settings.PACS_DICOM_QUERY_POLICY = "open"
    make_archive(tmp_path / "archive")
    return scp


def start_storescp(folder, *options: str):
    """dcmtk's storescp as the move destination, registered as STORESCP: (port, process)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen([dcmtk_program("storescp"), *options, "-aet", "STORESCP", "-od", str(folder), str(port)],
                               env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    RemoteAE.objects.update_or_create(ae_title="STORESCP", defaults={"host": "127.0.0.1", "port": port})
    return port, process


@pytest.fixture
def storescp(tmp_path):
    port, process = start_storescp(tmp_path / "received")
    yield tmp_path / "received"
    process.kill()
    process.wait(timeout=10)


def received(folder) -> list[Dataset]:
    return [dcmread(p) for p in sorted(folder.iterdir())]


@pytest.mark.peers
def test_movescu_delivers_a_whole_study(archive_scp, storescp):
    _ae, port = archive_scp
    result = dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aec", "PACSONE", "-aem", "STORESCP",
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={STUDY_A}", "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    assert {ds.SOPInstanceUID for ds in received(storescp)} == {A1 + ".1", A1 + ".2", STUDY_A + ".2.1"}
    entry = journaled(action="move", ae_title="MOVESCU").latest("id")
    assert entry.study_uid == STUDY_A and entry.patient_id == "P1" and entry.outcome == "success"
    assert "3 of 3 sent" in entry.detail


@pytest.mark.peers
@pytest.mark.parametrize("model,keys,expected", [
    ("-P", ["QueryRetrieveLevel=PATIENT", "PatientID=P1"], 3),
    ("-P", ["QueryRetrieveLevel=SERIES", "PatientID=P1", f"StudyInstanceUID={STUDY_A}", f"SeriesInstanceUID={A1}"], 2),
    ("-S", ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={STUDY_A}", f"SeriesInstanceUID={A1}",
            f"SOPInstanceUID={A1}.2"], 1),
])
def test_movescu_levels(archive_scp, storescp, model, keys, expected):
    _ae, port = archive_scp
    args = []
    for key in keys:
        args += ["-k", key]
    result = dcmtk("movescu", model, "-aet", "MOVESCU", "-aec", "PACSONE", "-aem", "STORESCP", *args, "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    assert len(received(storescp)) == expected


@pytest.mark.peers
def test_getscu_fetches_a_series(archive_scp, tmp_path):
    _ae, port = archive_scp
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk("getscu", "-S", "-aet", "GETSCU", "-aec", "PACSONE", "-od", out, "-k", "QueryRetrieveLevel=SERIES",
                   "-k", f"StudyInstanceUID={STUDY_A}", "-k", f"SeriesInstanceUID={A1}", "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    assert sorted(ds.SOPInstanceUID for ds in received(out)) == [A1 + ".1", A1 + ".2"]
    entry = journaled(action="retrieve", ae_title="GETSCU").latest("id")
    assert entry.study_uid == STUDY_A and entry.outcome == "success"


# --- pynetdicom as a second client ---------------------------------------------------------------------


def move(port: int, destination: str, ds: Dataset, model=StudyRootQueryRetrieveInformationModelMove):
    ae = AE(ae_title="PYMOVE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    try:
        return [status for status, _ in assoc.send_c_move(ds, destination, model)]
    finally:
        assoc.release()




def test_unknown_destination_is_a801_at_once(archive_scp):
    _ae, port = archive_scp
    RemoteAE.objects.create(ae_title="NOMOVE", host="127.0.0.1", port=1, is_move_destination=False)
    for destination in ("NOBODY", "NOMOVE"):
        started = time.monotonic()
        responses = move(port, destination, identifier("STUDY", StudyInstanceUID=STUDY_A))
        assert [r.Status for r in responses] == [0xA801]
        assert time.monotonic() - started < 2
    assert journaled(action="move", outcome="failure", target="C-MOVE to NOBODY").exists()
    assert echo_status(port) == 0x0000


def test_pynetdicom_move_counts(archive_scp, storescp):
    _ae, port = archive_scp
    responses = move(port, "STORESCP", identifier("PATIENT", PatientID="P1"), PatientRootQueryRetrieveInformationModelMove)
    pending = [r for r in responses if r.Status == 0xFF00]
    final = responses[-1]
    assert len(pending) == 3 and [r.NumberOfRemainingSuboperations for r in pending] == [2, 1, 0]
    assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 3
    assert final.NumberOfFailedSuboperations == 0 and final.NumberOfWarningSuboperations == 0


def test_no_match_is_success_with_nothing_sent(archive_scp, storescp):
    _ae, port = archive_scp
    responses = move(port, "STORESCP", identifier("STUDY", StudyInstanceUID="1.2.3.4"))
    assert responses[-1].Status == 0x0000 and received(storescp) == []


def test_bad_identifier_is_refused_without_sub_operations(archive_scp, storescp):
    _ae, port = archive_scp
    # The statuses C-FIND gives the same identifiers: C000 for a value we cannot match, A900 for
    # a level the model does not have; with the reason in the Error Comment.
    responses = move(port, "STORESCP", identifier("STUDY", StudyDate="soon"))
    assert len(responses) == 1 and responses[0].Status == 0xC000 and "soon" in responses[0].ErrorComment
    responses = move(port, "STORESCP", identifier("WARD"))
    assert len(responses) == 1 and responses[0].Status == 0xA900 and "WARD" in responses[0].ErrorComment
    assert received(storescp) == []
    assert echo_status(port) == 0x0000


def test_unreachable_destination(archive_scp):
    _ae, port = archive_scp
    RemoteAE.objects.create(ae_title="GONE", host="127.0.0.1", port=free_port())
    responses = move(port, "GONE", identifier("STUDY", StudyInstanceUID=STUDY_A))
    assert responses[-1].Status == 0xA801
    entry = journaled(action="move", target__startswith="C-MOVE to GONE").latest("id")
    assert entry.outcome == "failure" and "did not accept" in entry.detail


def test_cancel_move(archive_scp, storescp, monkeypatch):
    _ae, port = archive_scp
    send = qr.send_one

    def slow(*args, **kwargs):
        time.sleep(0.4)
        return send(*args, **kwargs)

    monkeypatch.setattr(qr, "send_one", slow)
    ae = AE(ae_title="PYMOVE")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    try:
        responses = assoc.send_c_move(identifier("STUDY", StudyInstanceUID=STUDY_A), "STORESCP",
                                      StudyRootQueryRetrieveInformationModelMove)
        first, _ = next(responses)
        assert first.Status == 0xFF00
        assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelMove)
        rest = [status for status, _ in responses]
    finally:
        assoc.release()
    final = rest[-1]
    assert final.Status == 0xFE00 and final.NumberOfRemainingSuboperations >= 1
    assert journaled(action="move", detail__contains="cancelled").exists()


# --- Transfer syntaxes ------------------------------------------------------------------------------------


@pytest.fixture
def compressed_scp(scp, tmp_path, settings):
    """RLE (decodable) and JPEG extended 12-bit (pylibjpeg cannot decode it), retrieved by any AE."""
    settings.PACS_DICOM_QUERY_POLICY = "open"
    for name in ("MR_small_RLE.dcm", "JPEG-lossy.dcm"):
        assert ingest_file(pydicom_file(name), Origin("import")).outcome.accepted
    return scp


def get(port: int, ds: Dataset, syntaxes=None):
    """C-GET with pynetdicom, storing what arrives in memory; (responses, received datasets)."""
    ae = AE(ae_title="PYGET")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for sop_class in (CTImageStorage, MRImageStorage):
        ae.add_requested_context(sop_class, syntaxes or ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        roles.append(build_role(sop_class, scp_role=True))
    arrived = []

    def on_store(event):
        arrived.append(event.dataset)
        event.dataset.file_meta = event.file_meta
        return 0x0000

    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE", ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    try:
        responses = [status for status, _ in assoc.send_c_get(ds, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    return responses, arrived


def test_get_decompresses_for_a_peer_that_takes_uncompressed_only(compressed_scp):
    _ae, port = compressed_scp
    rle = dcmread(pydicom_file("MR_small_RLE.dcm"))
    responses, arrived = get(port, identifier("STUDY", StudyInstanceUID=rle.StudyInstanceUID))
    final = responses[-1]
    assert final.NumberOfCompletedSuboperations == 1 and final.Status == 0x0000
    (got,) = arrived
    assert not got.file_meta.TransferSyntaxUID.is_compressed and got.SOPInstanceUID == rle.SOPInstanceUID
    assert np.array_equal(got.pixel_array, rle.pixel_array)


def test_get_sends_as_stored_when_accepted(compressed_scp):
    _ae, port = compressed_scp
    rle = dcmread(pydicom_file("MR_small_RLE.dcm"))
    responses, arrived = get(port, identifier("STUDY", StudyInstanceUID=rle.StudyInstanceUID),
                             syntaxes=["1.2.840.10008.1.2.5"])
    assert responses[-1].Status == 0x0000
    assert arrived[0].file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"


def test_undecodable_counts_as_failed(compressed_scp):
    _ae, port = compressed_scp
    lossy = dcmread(pydicom_file("JPEG-lossy.dcm"), stop_before_pixels=True)
    responses, arrived = get(port, identifier("IMAGE", SOPInstanceUID=lossy.SOPInstanceUID))
    final = responses[-1]
    # All sub-operations failed: A702 (pynetdicom's choice; B000 when some succeed).
    assert arrived == [] and final.Status == 0xA702 and final.NumberOfFailedSuboperations == 1
    assert journaled(action="retrieve", ae_title="PYGET").latest("id").outcome == "failure"


@pytest.mark.peers
def test_movescu_transcodes_for_a_default_storescp(compressed_scp, storescp):
    _ae, port = compressed_scp
    rle = dcmread(pydicom_file("MR_small_RLE.dcm"), stop_before_pixels=True)
    result = dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aec", "PACSONE", "-aem", "STORESCP",
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={rle.StudyInstanceUID}", "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    (got,) = received(storescp)
    assert got.SOPInstanceUID == rle.SOPInstanceUID and not got.file_meta.TransferSyntaxUID.is_compressed


# --- Calling-AE policy ------------------------------------------------------------------------------------


def test_registered_policy_refuses_a_retrieve_from_who_may_not_query(archive_scp, storescp, settings):
    """With PACS_ACCEPT_CALLING_AE=registered, a registered AE without query permission gets
    0x0124 for C-MOVE and C-GET, nothing is sent, and the refusal is journaled."""
    _ae, port = archive_scp
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    settings.PACS_DICOM_QUERY_POLICY = "registered"
    RemoteAE.objects.create(ae_title="PYMOVE", host="127.0.0.1", port=104, may_query=False)
    RemoteAE.objects.create(ae_title="PYGET", host="127.0.0.1", port=104, may_query=False)
    responses = move(port, "STORESCP", identifier("STUDY", StudyInstanceUID=STUDY_A))
    assert [r.Status for r in responses] == [0x0124] and received(storescp) == []
    responses, arrived = get(port, identifier("STUDY", StudyInstanceUID=STUDY_A))
    assert [r.Status for r in responses] == [0x0124] and arrived == []
    assert journaled(action="move", outcome="denied", ae_title="PYMOVE").exists()
    assert journaled(action="retrieve", outcome="denied", ae_title="PYGET").exists()


def test_registered_policy_rejects_an_unregistered_caller(archive_scp, settings):
    _ae, port = archive_scp
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    settings.PACS_DICOM_QUERY_POLICY = "registered"
    RemoteAE.objects.create(ae_title="SOMEONE", host="127.0.0.1", port=104)
    assert rejection(port, "PYMOVE", StudyRootQueryRetrieveInformationModelMove) == (0x01, 0x01, 0x03)
