"""Modality Worklist C-FIND, fed by ORM^O01/OMI^O23, queried by dcmtk's findscu -W and pynetdicom;
matching as dcmtk's wlmscpfs does it."""

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from hl7.inbound import handle
from hl7.models import ScheduledStep
from tests.pacsone.dicom.test_dcmtk_interop import dcmtk

from .messages import message, msa, orm_o01


def order(text: str, charset: str = "utf-8") -> list[str]:
    return msa(handle(text.encode(charset), "127.0.0.1").decode(charset))


@pytest.fixture
def worklist(scp, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"
    assert order(orm_o01("PL1", "ACC1", patient_id="P1", name="DOE^JANE", modality="CT", station="CT01",
                         start="20240110083000", control_id="O1"))[1] == "AA"
    assert order(orm_o01("PL2", "ACC2", patient_id="P2", name="ROE^RICHARD", modality="MR", station="MR01",
                         start="20240110140000", control_id="O2"))[1] == "AA"
    assert order(orm_o01("PL3", "ACC3", patient_id="P3", name="MÜLLER^JÜRGEN", modality="CT", station="CT02",
                         start="20240111090000", control_id="O3", charset="UNICODE UTF-8"))[1] == "AA"
    return scp[1]


def findscu_w(port: int, keys: list[str], out) -> list[Dataset]:
    out.mkdir(exist_ok=True)
    args = ["-W", "-aet", "MODALITY", "-aec", "PACSONE", "-X", "-od", out]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


SPS = "ScheduledProcedureStepSequence[0]"
RETURN_KEYS = ["PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID", "RequestedProcedureID",
               f"{SPS}.Modality", f"{SPS}.ScheduledStationAETitle", f"{SPS}.ScheduledProcedureStepStartDate",
               f"{SPS}.ScheduledProcedureStepStartTime", f"{SPS}.ScheduledProcedureStepID"]

CASES = [
    ([f"{SPS}.Modality=CT"], {"ACC1", "ACC3"}),
    ([f"{SPS}.Modality=MR"], {"ACC2"}),
    ([f"{SPS}.ScheduledStationAETitle=CT01"], {"ACC1"}),
    ([f"{SPS}.ScheduledStationAETitle=CT*"], {"ACC1", "ACC3"}),
    ([f"{SPS}.ScheduledProcedureStepStartDate=20240110"], {"ACC1", "ACC2"}),
    ([f"{SPS}.ScheduledProcedureStepStartDate=20240111-"], {"ACC3"}),
    ([f"{SPS}.ScheduledProcedureStepStartDate=-20240110"], {"ACC1", "ACC2"}),
    ([f"{SPS}.ScheduledProcedureStepStartDate=20240110", f"{SPS}.ScheduledProcedureStepStartTime=1200-1800"], {"ACC2"}),
    (["PatientName=doe*"], {"ACC1"}),
    (["PatientName=R?E^*"], {"ACC2"}),
    (["PatientID=P3"], {"ACC3"}),
    (["AccessionNumber=ACC2"], {"ACC2"}),
    ([], {"ACC1", "ACC2", "ACC3"}),
]


@pytest.mark.parametrize("keys,expected", CASES)
def test_findscu_w_matches_like_wlmscpfs(worklist, tmp_path, keys, expected):
    matched_keys = {key.split("=")[0] for key in keys}
    answers = findscu_w(worklist, [k for k in RETURN_KEYS if k not in matched_keys] + keys, tmp_path / "out")
    assert {a.AccessionNumber for a in answers} == expected


def test_answers_carry_the_step_and_the_character_set(worklist, tmp_path):
    answers = findscu_w(worklist, RETURN_KEYS + ["PatientID=P3"], tmp_path / "out")
    (answer,) = answers
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert str(answer.PatientName) == "MÜLLER^JÜRGEN"
    step = answer.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepStartDate,
            step.ScheduledProcedureStepStartTime, step.ScheduledProcedureStepID) == ("CT", "CT02", "20240111", "090000", "SPSPL3")
    assert answer.StudyInstanceUID == ScheduledStep.objects.get(accession_number="ACC3").study_instance_uid
    assert answer.RequestedProcedureID == "RPPL3"


def test_a_cancelled_order_leaves_the_worklist(worklist, tmp_path):
    assert order(orm_o01("PL1", "ACC1", control="CA", control_id="O4"))[1] == "AA"
    answers = findscu_w(worklist, RETURN_KEYS, tmp_path / "out")
    assert {a.AccessionNumber for a in answers} == {"ACC2", "ACC3"}
    assert ScheduledStep.objects.get(accession_number="ACC1").state == ScheduledStep.State.CANCELLED


def test_an_order_update_moves_the_step(worklist, tmp_path):
    assert order(orm_o01("PL2", "ACC2", modality="MR", station="MR09", start="20240120100000", control="XO"))[1] == "AA"
    step = ScheduledStep.objects.get(accession_number="ACC2")
    assert (step.station_ae_title, step.start_date, step.start_time) == ("MR09", "20240120", "100000")
    assert ScheduledStep.objects.count() == 3


def test_cancelling_an_unknown_order_gets_ae(transactional_db):
    fields = order(orm_o01("NOPE", "NOPE", control="CA"))
    assert fields[1] == "AE" and "NOPE" in fields[3]


def test_an_omi_o23_schedules_a_step_from_its_ipc_segment(worklist, tmp_path):
    text = message("PID|1||P7^^^HOSP||OMI^PATIENT", "ORC|NW|PL7|F7", "TQ1|||||||20240115101500",
                   "OBR|1|PL7|F7|XR^Chest X-ray",
                   "IPC|ACC7|RP7|1.2.826.0.1.3680043.2.1125.7|SPS7|DX||ROOM7||DX01",
                   kind="OMI^O23^OMI_O23", control_id="OMI1")
    assert order(text)[1] == "AA"
    answers = findscu_w(worklist, RETURN_KEYS + [f"{SPS}.ScheduledStationAETitle=DX01"], tmp_path / "out")
    (answer,) = answers
    assert (answer.AccessionNumber, answer.StudyInstanceUID) == ("ACC7", "1.2.826.0.1.3680043.2.1125.7")
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "101500"


def test_pynetdicom_worklist_query_with_a_latin1_character_set(worklist):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", worklist, ae_title="PACSONE")
    identifier = Dataset()
    identifier.SpecificCharacterSet = "ISO_IR 100"
    identifier.PatientName = "MÜLLER*"
    identifier.AccessionNumber = ""
    try:
        answers = [ds for status, ds in assoc.send_c_find(identifier, ModalityWorklistInformationFind)
                   if status and status.Status == 0xFF00]
    finally:
        assoc.release()
    assert [(a.SpecificCharacterSet, str(a.PatientName), a.AccessionNumber) for a in answers] == [
        ("ISO_IR 100", "MÜLLER^JÜRGEN", "ACC3")]


def test_the_registered_policy_refuses_an_unknown_modality(scp, settings, tmp_path):
    settings.PACS_DICOM_QUERY_POLICY = "registered"
    assert order(orm_o01("PL1", "ACC1"))[1] == "AA"
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", scp[1], ae_title="PACSONE")
    identifier = Dataset()
    identifier.AccessionNumber = ""
    try:
        statuses = [status.Status for status, _ds in assoc.send_c_find(identifier, ModalityWorklistInformationFind)]
    finally:
        assoc.release()
    assert statuses == [0x0124]
