"""Issue 14's acceptance, as a new user would run it, with clients we did not write:
`mllp_send` (PyPI `hl7`) sends an ORM^O01 -> `findscu -W` lists it -> pynetdicom's MPPS
N-CREATE/N-SET marks it in progress and completed -> storescu stores the images -> a listening
receiver (hl7apy's server) gets the notification -> an ADT^A08 renames the patient and a C-FIND
shows it -> an ADT^A40 merges two patients with several studies -> garbage gets an AR and the
next good message an AA."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from pynetdicom.sop_class import ModalityPerformedProcedureStep, StudyRootQueryRetrieveInformationModelFind

from hl7.models import Destination, ScheduledStep
from tests.helpers import make_file
from tests.pacsone.dicom.test_dcmtk_interop import dcmtk

from .messages import Client, adt_a08, adt_a40, framed, msa, orm_o01
from .receiver import Receiver
from .test_adt import cfind
from .test_mpps import creation, ending, mpps_association
from .test_worklist import RETURN_KEYS, SPS, findscu_w


def mllp_send_program() -> str:
    """The `mllp_send` of the PyPI `hl7` package (requirements-test.txt)."""
    candidate = Path(sys.executable).parent / "mllp_send"
    found = str(candidate) if candidate.exists() else shutil.which("mllp_send")
    if not found:
        reason = "mllp_send (PyPI package hl7, requirements-test.txt) is not installed"
        if os.environ.get("PACS_REQUIRE_PEERS") == "1":
            pytest.fail(f"PACS_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return found


def mllp_send(port: int, text: str, tmp_path: Path, charset: str = "utf-8") -> str:
    """Send one message with mllp_send; its printed ACK."""
    path = tmp_path / f"message-{abs(hash(text))}.hl7"
    path.write_bytes(framed(text.encode(charset)))
    result = subprocess.run([mllp_send_program(), "--port", str(port), "--file", str(path), "127.0.0.1"],
                            capture_output=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode(charset, "replace")


def test_the_whole_loop(hl7_port, scp, tmp_path, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"
    settings.PACS_ROUTING_QUIET_SECONDS = 0  # the study counts as complete at once
    _ae, dicom_port = scp
    receiver = Receiver()
    try:
        Destination.objects.create(name="RIS", host="127.0.0.1", port=receiver.port, events="received,mpps")
        # An order from the RIS, sent by a client we did not write.
        ack = mllp_send(hl7_port, orm_o01("PL1", "ACC1", patient_id="P1", name="DOE^JANE", modality="CT",
                                          station="CT01", control_id="ORDER1"), tmp_path)
        assert msa(ack.strip().replace("\n", "\r"))[1:3] == ["AA", "ORDER1"]
        # The modality reads its worklist.
        (entry,) = findscu_w(dicom_port, RETURN_KEYS + [f"{SPS}.Modality=CT"], tmp_path / "wl")
        assert entry.AccessionNumber == "ACC1" and str(entry.PatientName) == "DOE^JANE"
        step = ScheduledStep.objects.get()
        # MPPS: in progress, then completed.
        uid = generate_uid()
        assoc = mpps_association(dicom_port)
        try:
            assert assoc.send_n_create(creation(step), ModalityPerformedProcedureStep, uid)[0].Status == 0
            step.refresh_from_db()
            assert step.state == ScheduledStep.State.IN_PROGRESS
            assert assoc.send_n_set(ending("COMPLETED"), ModalityPerformedProcedureStep, uid)[0].Status == 0
        finally:
            assoc.release()
        step.refresh_from_db()
        assert step.state == ScheduledStep.State.COMPLETED
        assert receiver.arrived.wait(10)  # the MPPS notification
        # The images, stored with dcmtk's storescu: the RIS hears that the study arrived.
        receiver.arrived.clear()
        image = make_file(tmp_path / "images", patient_id="P1", patient_name="DOE^JANE", AccessionNumber="ACC1",
                          StudyInstanceUID=entry.StudyInstanceUID)
        stored = dcmtk("storescu", "-aec", "PACSONE", "-aet", "MODALITY", "127.0.0.1", dicom_port, image)
        assert stored.returncode == 0, stored.stdout
        assert receiver.arrived.wait(10)
        assert any("|ORM^O01^ORM_O01|" in text and "ACC1" in text for text in receiver.received)
    finally:
        receiver.stop()
    # ADT^A08 renames the patient; C-FIND shows the new name.
    ack = mllp_send(hl7_port, adt_a08("P1", "DOE^JANE^Q", control_id="RENAME"), tmp_path)
    assert "MSA|AA|RENAME" in ack
    (answer,) = cfind(dicom_port, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                      PatientID="P1", PatientName="")
    assert str(answer.PatientName) == "DOE^JANE^Q"
    # ADT^A40 merges a second patient with several studies into P1; both IDs find all of them.
    for n in range(3):
        other = make_file(tmp_path / "dup", f"{n}.dcm", patient_id="DUP", patient_name="DOE^J")
        assert dcmtk("storescu", "-aec", "PACSONE", "-aet", "MODALITY", "127.0.0.1", dicom_port, other).returncode == 0
    assert "MSA|AA|A40-1" in mllp_send(hl7_port, adt_a40("P1", "DUP"), tmp_path)
    for patient_id in ("P1", "DUP"):
        answers = cfind(dicom_port, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                        PatientID=patient_id, StudyInstanceUID="")
        assert len(answers) == 4, patient_id
    # Garbage gets an AR, the next good message an AA.
    client = Client(hl7_port)
    client.send(framed(os.urandom(64).replace(b"\x1c", b"").replace(b"\x0b", b"")))
    assert msa(client.ack())[1] == "AR"
    client.send(framed(adt_a08("P1", "DOE^JANE", control_id="AFTER").encode()))
    assert msa(client.ack())[1:3] == ["AA", "AFTER"]
