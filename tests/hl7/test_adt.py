"""ADT: demographics updates, merges (and their undoing) and identifier changes reach what
C-FIND, pages and the API return, and are journaled."""

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind

from audit.models import Entry
from hl7.inbound import handle
from hl7.models import PatientMerge
from pacsone.models import Patient, Study
from tests.helpers import ingest_instance, make_file

from .messages import adt_a40, message, msa


def ack_of(text: str, charset: str = "utf-8") -> list[str]:
    return msa(handle(text.encode(charset), "127.0.0.1").decode(charset))


def studies_for(tmp_path, patient_id: str, name: str, count: int) -> list[str]:
    uids = []
    for n in range(count):
        instance = ingest_instance(make_file(tmp_path / patient_id, f"{n}.dcm", patient_id=patient_id,
                                             patient_name=name, AccessionNumber=f"{patient_id}-{n}"))
        uids.append(instance.series.study.study_instance_uid)
    return uids


def cfind(port: int, model, **keys) -> list[Dataset]:
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    try:
        answers = [ds for status, ds in assoc.send_c_find(identifier, model) if status and status.Status in (0xFF00, 0xFF01)]
    finally:
        assoc.release()
    return answers


@pytest.fixture
def open_queries(settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"


def test_an_a08_renames_the_patient_in_cfind_and_journals_it(scp, open_queries, tmp_path):
    _ae, port = scp
    studies_for(tmp_path, "P1", "OLD^NAME", 1)
    fields = ack_of(message("EVN|A08", "PID|1||P1^^^^MR||NEW^NAME^M||19650304|F", control_id="X1"))
    assert fields[1] == "AA"
    answers = cfind(port, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                    PatientID="P1", PatientName="", PatientBirthDate="", PatientSex="", StudyInstanceUID="")
    assert [(str(a.PatientName), a.PatientBirthDate, a.PatientSex) for a in answers] == [("NEW^NAME^M", "19650304", "F")]
    entry = Entry.objects.get(username="hl7:RIS", patient_id="P1")
    assert "OLD^NAME" in entry.detail and "NEW^NAME^M" in entry.detail
    assert "HL7 ADT^A08 X1" == entry.target


def test_an_a08_with_empty_fields_keeps_them_and_a_null_clears_them(transactional_db):
    Patient.objects.create(patient_id="P2", patient_name="KEEP^ME", patient_name_search="KEEP^ME", sex="M")
    assert ack_of(message("EVN|A08", "PID|1||P2||||19700101"))[1] == "AA"
    patient = Patient.objects.get(patient_id="P2")
    assert (patient.patient_name, patient.sex, str(patient.birth_date)) == ("KEEP^ME", "M", "1970-01-01")
    assert ack_of(message("EVN|A08", 'PID|1||P2||||""|""'))[1] == "AA"
    patient.refresh_from_db()
    assert (patient.birth_date, patient.sex) == (None, "")


def test_an_a08_for_an_unknown_patient_is_accepted_and_changes_nothing(transactional_db):
    fields = ack_of(message("EVN|A08", "PID|1||NOBODY||X^Y"))
    assert fields[1] == "AA"
    assert not Patient.objects.exists()


def test_an_a40_merges_several_studies_and_both_ids_find_them(scp, open_queries, tmp_path):
    _ae, port = scp
    kept = studies_for(tmp_path, "KEEP", "KEEP^ER", 2)
    merged = studies_for(tmp_path, "DUP", "DUP^LICATE", 3)
    assert ack_of(adt_a40("KEEP", "DUP"))[1] == "AA"
    assert set(Study.objects.filter(patient__patient_id="KEEP").values_list("study_instance_uid", flat=True)) == {*kept, *merged}
    for patient_id in ("KEEP", "DUP"):
        answers = cfind(port, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                        PatientID=patient_id, StudyInstanceUID="")
        assert {a.StudyInstanceUID for a in answers} == {*kept, *merged}, patient_id
        assert {a.PatientID for a in answers} == {"KEEP"}
    patients = cfind(port, PatientRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="PATIENT",
                     PatientID="DUP", NumberOfPatientRelatedStudies="")
    assert ("KEEP", 5) in {(a.PatientID, int(a.NumberOfPatientRelatedStudies)) for a in patients}
    assert Entry.objects.filter(target="HL7 ADT^A40 A40-1", detail__contains="3 studies moved").exists()


def test_an_a37_undoes_a_merge_exactly(transactional_db, tmp_path):
    kept = studies_for(tmp_path, "KEEP", "KEEP^ER", 1)
    merged = studies_for(tmp_path, "DUP", "DUP^LICATE", 2)
    assert ack_of(adt_a40("KEEP", "DUP"))[1] == "AA"
    fields = ack_of(message("EVN|A37", "PID|1||KEEP", "MRG|DUP", kind="ADT^A37^ADT_A37", control_id="U1"))
    assert fields[1] == "AA"
    assert set(Study.objects.filter(patient__patient_id="DUP").values_list("study_instance_uid", flat=True)) == set(merged)
    assert set(Study.objects.filter(patient__patient_id="KEEP").values_list("study_instance_uid", flat=True)) == set(kept)
    assert PatientMerge.objects.get().undone_at is not None
    assert ack_of(message("EVN|A37", "PID|1||KEEP", "MRG|DUP", kind="ADT^A37^ADT_A37"))[1] == "AE"


def test_an_a40_into_a_new_id_creates_the_surviving_patient(transactional_db, tmp_path):
    studies_for(tmp_path, "OLD", "SOME^ONE", 1)
    assert ack_of(adt_a40("NEWID", "OLD", name="SOME^ONE^X"))[1] == "AA"
    assert Study.objects.get().patient.patient_id == "NEWID"


def test_an_a47_changes_the_identifier_and_refuses_a_taken_one(transactional_db, tmp_path):
    studies_for(tmp_path, "WRONG", "A^B", 1)
    Patient.objects.create(patient_id="TAKEN")
    fields = ack_of(message("EVN|A47", "PID|1||TAKEN", "MRG|WRONG", kind="ADT^A47^ADT_A30"))
    assert fields[1] == "AE" and "in use" in fields[3]
    assert ack_of(message("EVN|A47", "PID|1||RIGHT", "MRG|WRONG", kind="ADT^A47^ADT_A30"))[1] == "AA"
    assert Study.objects.get().patient.patient_id == "RIGHT"
    assert Entry.objects.filter(detail="patient identifier changed from WRONG to RIGHT").exists()


def test_the_api_and_the_study_page_show_the_new_name(transactional_db, client):
    from tests.people import make_study, make_user

    study = make_study("1.2.3.4", "P9", patient_name="BEFORE^X")
    assert ack_of(message("EVN|A08", "PID|1||P9||AFTER^Y"))[1] == "AA"
    client.force_login(make_user("root"))
    assert client.get(f"/api/patients/{study.patient.pk}/").json()["patient_name"] == "AFTER^Y"


def test_a_report_for_an_unknown_study_gets_ae_and_a_known_one_becomes_a_note(transactional_db):
    from pacsone.models import Note
    from tests.people import make_study

    from .messages import oru_r01

    fields = ack_of(oru_r01("NOWHERE", ["Text."]))
    assert fields[1] == "AE" and "accession" in fields[3]
    study = make_study("1.2.3.77", "P77", accession="ACC77")
    assert ack_of(oru_r01("ACC77", ["Findings: none.", "Impression: normal \\F\\ clear."]))[1] == "AA"
    note = Note.objects.get(study=study)
    assert note.text == "Findings: none.\nImpression: normal | clear." and note.author is None
    assert note.author_name == "Report (F) from RIS"


def test_an_a47_without_a_new_id_gets_ae(transactional_db):
    Patient.objects.create(patient_id="OLD47")
    fields = ack_of(message("EVN|A47", "PID|1||", "MRG|OLD47", kind="ADT^A47^ADT_A30"))
    assert fields[1] == "AE" and "PID-3" in fields[3]
    assert Patient.objects.filter(patient_id="OLD47").exists()
