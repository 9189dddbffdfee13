"""Matching keys that no column holds, from the stored headers (pacsone/dicom/header_match.py):
any attribute, value lists, wildcards, ranges, numbers, sequences (PS3.4 C.2.2.2.6), the
any-instance rule above IMAGE level, and the bound on the headers read."""

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from pacsone.dicom import query as q
from pacsone.ingest import Origin, ingest_file
from tests.helpers import journaled, make_file
from tests.pacsone.dicom.qr_archive import identifier
from tests.pacsone.dicom.test_cfind_scp import associate, findscu

pytestmark = pytest.mark.django_db

X, Y, Z = "1.2.826.0.1.3680043.10.51", "1.2.826.0.1.3680043.10.52", "1.2.826.0.1.3680043.10.53"


def item(**keys) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def make_header_archive(folder) -> None:
    files = [
        dict(study_uid=X, series_uid=X + ".1", sop_uid=X + ".1.1", patient_id="P1", InstanceNumber=1,
             ProtocolName="CHEST ROUTINE", ProcedureCodeSequence=[item(CodeValue="CT123", CodingSchemeDesignator="L")],
             RequestAttributesSequence=[item(RequestedProcedureID="RP1", ScheduledProcedureStepID="SPS1"),
                                        item(RequestedProcedureID="RP2", ScheduledProcedureStepID="SPS2")],
             ReferencedStudySequence=[item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                                           ReferencedSOPInstanceUID="1.2.3.99")]),
        dict(study_uid=X, series_uid=X + ".1", sop_uid=X + ".1.2", patient_id="P1", InstanceNumber=2,
             ProtocolName="CHEST LOW DOSE", SliceThickness="1.25"),
        dict(study_uid=Y, series_uid=Y + ".1", sop_uid=Y + ".1.1", patient_id="P2", Modality="MR",
             ProtocolName="BRAIN", ProcedureCodeSequence=[item(CodeValue="MR77", CodingSchemeDesignator="L")],
             RequestAttributesSequence=[item(RequestedProcedureID="RP9")], SliceThickness="5.0",
             AcquisitionDate="20240301", AcquisitionTime="093000", ReferringPhysicianName="Who^Ever"),
        dict(study_uid=Z, series_uid=Z + ".1", sop_uid=Z + ".1.1", patient_id="P3", patient_name="Müller^Jürgen",
             SpecificCharacterSet="ISO_IR 192", InstitutionName="Universitätsklinikum Süd"),
    ]
    for i, kwargs in enumerate(files):
        assert ingest_file(make_file(folder, f"{i}.dcm", **kwargs), Origin("import")).outcome.accepted


@pytest.fixture
def archive(tmp_path, monkeypatch):
    make_header_archive(tmp_path)

    def no_file_reads(*_args, **_kwargs):
        raise AssertionError("a query read a stored file")

    monkeypatch.setattr("pydicom.dcmread", no_file_reads)
    monkeypatch.setattr("pacsone.storage.open_instance", no_file_reads, raising=False)


def found(level: str, **keys) -> list[Dataset]:
    _query, answers = q.find(identifier(level, **keys), q.STUDY_ROOT)
    return list(answers)


def studies(**keys) -> set[str]:
    return {a.StudyInstanceUID for a in found("STUDY", StudyInstanceUID="", **keys)}


@pytest.mark.parametrize("keys,expected", [
    ({"ProtocolName": "CHEST ROUTINE"}, {X}),
    ({"ProtocolName": "CHEST*"}, {X}),
    ({"ProtocolName": "*low*"}, set()),  # text is case-sensitive
    ({"ProtocolName": "BR?IN"}, {Y}),
    ({"ProtocolName": "BRAIN\\CHEST ROUTINE"}, {X, Y}),  # a value list: any of them
    ({"ProtocolName": "NOTHING"}, set()),
    ({"ProtocolName": "*"}, {X, Y, Z}),  # universal: a return key
    ({"SliceThickness": "5"}, {Y}),  # numbers compare as numbers
    ({"SliceThickness": "1.25\\7"}, {X}),
    ({"AcquisitionDate": "20240201-20240331"}, {Y}),
    ({"AcquisitionDate": "-20240229"}, set()),
    ({"AcquisitionTime": "0900-1000"}, {Y}),
    ({"InstitutionName": "Universitäts*"}, {Z}),  # stored headers hold decoded text
    ({"PatientID": "P1", "ProtocolName": "BRAIN"}, set()),  # the indexed keys narrow first
    ({"PatientID": "P2", "ProtocolName": "BRAIN"}, {Y}),
])
def test_any_header_attribute_is_a_matching_key(archive, keys, expected):
    assert studies(**keys) == expected


def test_a_study_matches_when_any_of_its_instances_does(archive):
    (answer,) = found("STUDY", StudyInstanceUID="", ProtocolName="*LOW*")
    assert answer.StudyInstanceUID == X
    assert answer.ProtocolName == "CHEST LOW DOSE"  # from the instance that matched


def test_at_image_level_each_instance_is_matched(archive):
    answers = found("IMAGE", StudyInstanceUID=X, SeriesInstanceUID=X + ".1", SOPInstanceUID="", ProtocolName="*LOW*")
    assert [a.SOPInstanceUID for a in answers] == [X + ".1.2"]


def test_patient_and_series_levels_match_through_any_instance(archive):
    _query, answers = q.find(identifier("PATIENT", PatientID="", ProtocolName="*DOSE"), q.PATIENT_ROOT)
    assert [a.PatientID for a in answers] == ["P1"]
    series = found("SERIES", StudyInstanceUID=X, SeriesInstanceUID="", SliceThickness="1.25")
    assert [a.SeriesInstanceUID for a in series] == [X + ".1"]


def test_a_retrieve_by_a_header_key_takes_the_whole_matched_study(archive):
    _query, instances = q.instances_for(identifier("STUDY", ProtocolName="*LOW*"), q.STUDY_ROOT)
    assert sorted(instances.values_list("sop_instance_uid", flat=True)) == [X + ".1.1", X + ".1.2"]


@pytest.mark.parametrize("sequence,keys,expected", [
    ("RequestAttributesSequence", {"RequestedProcedureID": "RP2"}, {X}),
    ("RequestAttributesSequence", {"RequestedProcedureID": "RP9"}, {Y}),
    ("RequestAttributesSequence", {"RequestedProcedureID": "RP*"}, {X, Y}),
    # every key of the query's item must match within one stored item
    ("RequestAttributesSequence", {"RequestedProcedureID": "RP1", "ScheduledProcedureStepID": "SPS1"}, {X}),
    ("RequestAttributesSequence", {"RequestedProcedureID": "RP2", "ScheduledProcedureStepID": "SPS1"}, set()),
    ("ProcedureCodeSequence", {"CodeValue": "MR77", "CodingSchemeDesignator": "L"}, {Y}),
    ("ProcedureCodeSequence", {"CodeValue": "CT*", "CodeMeaning": ""}, {X}),  # empty: a return key
    ("ReferencedStudySequence", {"ReferencedSOPInstanceUID": "1.2.3.98\\1.2.3.99"}, {X}),
    ("ReferencedStudySequence", {"ReferencedSOPInstanceUID": "1.2.3.98"}, set()),
])
def test_sequence_matching(archive, sequence, keys, expected):
    assert studies(**{sequence: [item(**keys)]}) == expected


def test_an_empty_sequence_key_is_a_return_key(archive):
    answers = {a.StudyInstanceUID: a for a in found("STUDY", StudyInstanceUID="", ProcedureCodeSequence=[])}
    assert set(answers) == {X, Y, Z}
    assert answers[Y].ProcedureCodeSequence[0].CodeValue == "MR77"
    assert len(answers[Z].ProcedureCodeSequence) == 0
    only_empty_keys = found("STUDY", StudyInstanceUID="", ProcedureCodeSequence=[item(CodeValue="")])
    assert len(only_empty_keys) == 3


@pytest.mark.parametrize("keys,reason", [
    ({"RequestAttributesSequence": [item(RequestedProcedureID="RP1"), item(RequestedProcedureID="RP2")]},
     "holds one item"),
    ({"InstanceCreationDate": "today"}, "not a date"),
    ({"AcquisitionDate": "March"}, "not a date"),
    ({"FrameIncrementPointer": 0x00181063}, "cannot match on FrameIncrementPointer"),
])
def test_keys_that_cannot_be_matched_are_refused(archive, keys, reason):
    with pytest.raises(q.QueryError) as refused:
        found("STUDY", **keys)
    assert refused.value.status == 0xC000 and reason in refused.value.reason


def test_a_number_that_is_no_number_is_refused(archive):
    ds = identifier("STUDY")
    # As it would arrive from the network: undecoded bytes, converted when read.
    ds[0x00180050] = RawDataElement(Tag(0x00180050), "DS", 4, b"thin", 0, False, True)
    with pytest.raises(q.QueryError) as refused:
        q.build_query(ds, q.STUDY_ROOT)
    assert refused.value.status == 0xC000 and "SliceThickness" in refused.value.reason


def test_a_query_that_would_read_too_many_headers_is_refused(archive, settings):
    settings.PACS_QUERY_HEADER_SCAN_LIMIT = 3
    with pytest.raises(q.QueryError) as refused:
        studies(ProtocolName="BRAIN")  # no indexed key: all 4 instances
    assert refused.value.status == 0xA700
    assert "over 3 headers" in refused.value.reason and len(refused.value.reason) <= 64
    assert studies(StudyDate="20240105", AccessionNumber="ACC1", PatientID="P2", ProtocolName="BRAIN") == {Y}


# --- Over the network -----------------------------------------------------------------------------------


@pytest.fixture
def header_scp(scp, tmp_path, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"  # about matching, not about who may query
    make_header_archive(tmp_path / "archive")
    return scp


def test_cfind_with_a_sequence_key_and_the_bound(header_scp, settings):
    _ae, port = header_scp
    ds = identifier("STUDY", StudyInstanceUID="", ProtocolName="",
                    RequestAttributesSequence=[item(RequestedProcedureID="RP2")])
    assoc = associate(port)
    try:
        replies = list(assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind))
        settings.PACS_QUERY_HEADER_SCAN_LIMIT = 2
        (refused, _), = list(assoc.send_c_find(identifier("STUDY", StudyInstanceUID="", ProtocolName="BRAIN"),
                                               StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    answers = [a for s, a in replies if s.Status == 0xFF00]
    assert [a.StudyInstanceUID for a in answers] == [X] and replies[-1][0].Status == 0x0000
    assert [i.RequestedProcedureID for i in answers[0].RequestAttributesSequence] == ["RP1", "RP2"]
    assert refused.Status == 0xA700 and "headers to scan" in refused.ErrorComment
    entry = journaled(action="query", ae_title="PYFIND", outcome="success").latest("id")
    assert "RequestAttributesSequence>RequestedProcedureID=RP2" in entry.detail


@pytest.mark.peers
def test_findscu_sequence_and_header_keys(header_scp, tmp_path):
    _ae, port = header_scp
    answers = findscu(port, "-S", "STUDY", ["StudyInstanceUID", "(0008,1032)[0].(0008,0100)=MR*",
                                            "ProtocolName=BR*"], tmp_path / "out")
    assert [a.StudyInstanceUID for a in answers] == [Y]
    assert answers[0].ProcedureCodeSequence[0].CodeValue == "MR77"
