"""C-FIND SCP against real clients: dcmtk's findscu (every matching kind, each level, both
information models) and pynetdicom (cancel, bad input, refusals, journal)."""

import time

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from pacsone.dicom import query
from pacsone.models import RemoteAE
from tests.helpers import echo_status, journaled
from tests.pacsone.dicom.qr_archive import STUDY_A, STUDY_B, STUDY_C, identifier, make_archive
from tests.pacsone.dicom.test_dcmtk_interop import dcmtk

A1, A2 = STUDY_A + ".1", STUDY_A + ".2"


@pytest.fixture
def archive_scp(scp, tmp_path, settings):
    """The archive, queried by any AE: these tests are about Q/R itself (who may ask, and what an
    AE linked to a user sees: test_dicom_access.py)."""
    settings.PACS_DICOM_QUERY_POLICY = "open"
    make_archive(tmp_path / "archive")
    return scp


def findscu(port: int, model: str, level: str, keys: list[str], out) -> list[Dataset]:
    out.mkdir(exist_ok=True)
    args = ["-aet", "FINDSCU", "-aec", "PACSONE", model, "-X", "-od", out, "-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("findscu", *args, "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


CASES = [
    # model, level, keys, the key whose values are compared, expected values
    ("-S", "STUDY", ["PatientName=DOE*", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_B}),
    ("-S", "STUDY", ["PatientName=doe^j*", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A}),
    ("-S", "STUDY", ["PatientName=R?E^*", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_C}),
    ("-S", "STUDY", ["PatientName", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_B, STUDY_C}),
    ("-S", "STUDY", ["PatientID=X3", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_C}),
    ("-S", "STUDY", ["AccessionNumber=ACC?", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_B}),
    ("-S", "STUDY", [f"StudyInstanceUID={STUDY_A}\\{STUDY_C}"], "StudyInstanceUID", {STUDY_A, STUDY_C}),
    ("-S", "STUDY", ["StudyDate=20240105-20240106", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_B}),
    ("-S", "STUDY", ["StudyDate=-20240105", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A}),
    ("-S", "STUDY", ["StudyDate=20240106-", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_B, STUDY_C}),
    ("-S", "STUDY", ["StudyTime=2200-", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_B}),
    ("-S", "STUDY", ["StudyDate=20240105-20240110", "StudyTime=1200-0900", "StudyInstanceUID"],
     "StudyInstanceUID", {STUDY_B, STUDY_C}),
    ("-S", "STUDY", ["ModalitiesInStudy=MR", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A}),
    ("-S", "STUDY", ["ModalitiesInStudy=CT\\US", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_B, STUDY_C}),
    ("-S", "STUDY", ["ModalitiesInStudy=MR\\US", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A, STUDY_C}),
    ("-P", "PATIENT", ["PatientID=P*", "PatientName"], "PatientID", {"P1", "P2"}),
    ("-P", "PATIENT", ["PatientName=*RICHARD", "PatientID"], "PatientID", {"X3"}),
    ("-P", "STUDY", ["PatientID=P1", "StudyInstanceUID"], "StudyInstanceUID", {STUDY_A}),
    ("-S", "SERIES", [f"StudyInstanceUID={STUDY_A}", "Modality=CT", "SeriesInstanceUID"], "SeriesInstanceUID", {A1}),
    ("-P", "SERIES", ["PatientID=P1", f"StudyInstanceUID={STUDY_A}", "SeriesInstanceUID"], "SeriesInstanceUID",
     {A1, A2}),
    ("-S", "IMAGE", [f"StudyInstanceUID={STUDY_A}", f"SeriesInstanceUID={A1}", "SOPInstanceUID"], "SOPInstanceUID",
     {A1 + ".1", A1 + ".2"}),
    ("-P", "IMAGE", ["PatientID=P1", f"StudyInstanceUID={STUDY_A}", f"SeriesInstanceUID={A1}", "InstanceNumber=2",
                     "SOPInstanceUID"], "SOPInstanceUID", {A1 + ".2"}),
]


@pytest.mark.peers
@pytest.mark.parametrize("model,level,keys,compared,expected", CASES)
def test_findscu(archive_scp, tmp_path, model, level, keys, compared, expected):
    _ae, port = archive_scp
    answers = findscu(port, model, level, keys, tmp_path / "out")
    assert {str(a[compared].value) for a in answers} == expected
    assert len(answers) == len(expected)  # exact: no duplicates


@pytest.mark.peers
def test_findscu_return_keys(archive_scp, tmp_path):
    _ae, port = archive_scp
    keys = [f"StudyInstanceUID={STUDY_A}", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime",
            "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "InstitutionName",
            "ReferringPhysicianName", "StudyDescription", "RetrieveAETitle"]
    (answer,) = findscu(port, "-S", "STUDY", keys, tmp_path / "out")
    assert str(answer.PatientName) == "Doe^John" and answer.PatientBirthDate == "19700101"
    assert answer.StudyDate == "20240105" and answer.StudyTime == "101500" and answer.AccessionNumber == "ACC1"
    assert list(answer.ModalitiesInStudy) == ["CT", "MR"] and answer.NumberOfStudyRelatedInstances == 3
    assert answer.InstitutionName == "General Hospital" and answer.StudyDescription == "CHEST"
    assert answer.RetrieveAETitle == "PACSONE"


# --- pynetdicom as a second client ---------------------------------------------------------------------


def associate(port: int, calling: str = "PYFIND"):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for context in (StudyRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelFind,
                    Verification):
        ae.add_requested_context(context)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    return assoc




def statuses(assoc, ds, model=StudyRootQueryRetrieveInformationModelFind) -> list[int]:
    return [status.Status for status, _ in assoc.send_c_find(ds, model) if status]


def test_pynetdicom_find_and_journal(archive_scp):
    _ae, port = archive_scp
    assoc = associate(port)
    try:
        answers = [a for s, a in assoc.send_c_find(identifier("STUDY", PatientName="DOE*", StudyInstanceUID=""),
                                                   StudyRootQueryRetrieveInformationModelFind) if s.Status == 0xFF00]
    finally:
        assoc.release()
    assert {a.StudyInstanceUID for a in answers} == {STUDY_A, STUDY_B}
    entry = journaled(action="query", ae_title="PYFIND").latest("id")
    assert entry.outcome == "success" and "PatientName=DOE*" in entry.detail and "2 answers" in entry.detail


@pytest.mark.parametrize("ds,expected", [
    (identifier("FOO"), 0xA900),
    (identifier("PATIENT"), 0xA900),  # no PATIENT level in Study Root
    (identifier("STUDY", StudyDate="yesterday"), 0xC000),
    (identifier("STUDY", StudyTime="99-"), 0xC000),
])
def test_bad_identifiers_get_a_status_and_the_server_goes_on(archive_scp, ds, expected):
    _ae, port = archive_scp
    assoc = associate(port)
    try:
        assert statuses(assoc, ds) == [expected]
        # The same association still answers.
        assert statuses(assoc, identifier("STUDY", StudyInstanceUID=STUDY_C))[-1] == 0x0000
    finally:
        assoc.release()
    assert echo_status(port) == 0x0000
    assert journaled(action="query", outcome="failure").exists()


def test_cancel_stops_the_answers(archive_scp, monkeypatch):
    _ae, port = archive_scp
    slow_answer = query.Answerer.encoded_answer

    def answer(self, row, header, explicit_vr):
        time.sleep(0.3)
        return slow_answer(self, row, header, explicit_vr)

    monkeypatch.setattr(query.Answerer, "encoded_answer", answer)
    assoc = associate(port)
    try:
        responses = assoc.send_c_find(identifier("IMAGE", SOPInstanceUID=""), StudyRootQueryRetrieveInformationModelFind)
        first_status, _ = next(responses)
        assert first_status.Status == 0xFF00
        assoc.send_c_cancel(1, query_model=StudyRootQueryRetrieveInformationModelFind)
        rest = [status.Status for status, _ in responses]
    finally:
        assoc.release()
    assert rest[-1] == 0xFE00 and len(rest) < 5  # 5 instances match
    assert journaled(action="query", detail__contains="cancelled").exists()


def test_registered_policy_refuses_who_may_not_query(archive_scp, settings):
    _ae, port = archive_scp
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    settings.PACS_DICOM_QUERY_POLICY = "registered"
    RemoteAE.objects.create(ae_title="PYFIND", host="127.0.0.1", port=104, may_query=False)
    assoc = associate(port)
    try:
        assert statuses(assoc, identifier("STUDY", StudyInstanceUID="")) == [0x0124]
    finally:
        assoc.release()
    assert journaled(action="query", outcome="denied", ae_title="PYFIND").exists()
