"""C-FIND answers encoded without pydicom (pacsone.dicom.identifier_codec and
Answerer.encoded_answers): byte for byte what pydicom's write_dataset writes for the Datasets
of Answerer.answers(), in Implicit and Explicit VR Little Endian, at every level of both
information models, with empty, multi-valued, non-ASCII, sequence and private attributes."""

import warnings
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import decode, encode

from pacsone.dicom.net import identifier_codec as codec
from pacsone.dicom import query as q
from pacsone.ingest import Origin, ingest_file
from tests.helpers import make_file
from tests.pacsone.dicom.qr_archive import STUDY_A, STUDY_B, STUDY_C, identifier, make_archive

pytestmark = pytest.mark.django_db

STUDY_D, STUDY_E, STUDY_F = "1.2.826.0.1.3680043.10.4", "1.2.826.0.1.3680043.10.5", "1.2.826.0.1.3680043.10.61"


def _procedure_code() -> Sequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "CTHEAD", "99LOCAL", "CT Schädel"
    return Sequence([item])


@pytest.fixture
def archive(tmp_path):
    """qr_archive's three studies, and three with odd values: non-ASCII text under ISO_IR 192
    and under ISO_IR 100, multi-valued, empty and odd-length values, decimal strings, a
    sequence, private attributes, a signed pixel value (an ambiguous VR)."""
    make_archive(tmp_path)
    odd = [
        dict(study_uid=STUDY_D, series_uid=STUDY_D + ".1", sop_uid=STUDY_D + ".1.1", patient_id="M4",
             patient_name="Müller^Jürgen", SpecificCharacterSet="ISO_IR 192", StudyDate="20240201",
             StudyTime="0930", AccessionNumber="ÄCC4", StudyDescription="Schädel nativ", Modality="CT",
             SeriesNumber=3, InstanceNumber=7, ReferringPhysicianName="Weiß^Anna=ヤマダ^タロウ",
             InstitutionName="Klinikum Süd", ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
             PixelSpacing=[0.5, 0.4882812], SliceThickness="1.25", WindowCenter=["40", "400"],
             OperatorsName=["Op^One", "Öp^Two"], PatientComments="allergic\\to contrast",
             ProcedureCodeSequence=_procedure_code(), SmallestImagePixelValue=0, SeriesDescription="Kopf"),
        dict(study_uid=STUDY_D, series_uid=STUDY_D + ".2", sop_uid=STUDY_D + ".2.1", patient_id="M4",
             patient_name="Müller^Jürgen", SpecificCharacterSet="ISO_IR 192", StudyDate="20240201",
             StudyTime="0930", Modality="SR", SeriesNumber=4, InstanceNumber=1),
        dict(study_uid=STUDY_E, series_uid=STUDY_E + ".1", sop_uid=STUDY_E + ".1.1", patient_id="E5",
             patient_name="", StudyDate="", StudyTime="", AccessionNumber="", StudyDescription="",
             PatientBirthDate="", PatientSex="", Modality="OT", SeriesNumber=1, InstanceNumber=1,
             InstitutionName="Hôpital Nord", SpecificCharacterSet="ISO_IR 100", Manufacturer="",
             OperatorsName="", ImageType=["DERIVED", "", "X"]),
        dict(study_uid=STUDY_F, series_uid=STUDY_F + ".1", sop_uid=STUDY_F + ".1.1", patient_id="FIVE5",
             patient_name="Odd^Len^^^", StudyDate="20231231", StudyTime="235959.123", AccessionNumber="A",
             StudyDescription="MR KNEE", Modality="MR", SeriesNumber=12, InstanceNumber=123,
             InstitutionName="North", StationName="STATION7", ProtocolName="knee \\ left"),
    ]
    for i, kwargs in enumerate(odd):
        ds_file = make_file(tmp_path, f"odd{i}.dcm", **kwargs)
        if i == 0:  # private attributes, and their creator
            ds = dcmread(ds_file)
            ds.add_new(0x00090010, "LO", "ACME 1.0")
            ds.add_new(0x00091001, "LO", "private value")
            ds.add_new(0x00091002, "US", 7)
            ds.save_as(ds_file)
        result = ingest_file(ds_file, Origin("import"))
        assert result.outcome.accepted, result.reason


def reference(answers: list[Dataset], explicit: bool) -> list[bytes]:
    """What pynetdicom's encode (pydicom's write_dataset) makes of each answer."""
    encoded = [encode(ds, not explicit, True) for ds in answers]
    assert all(data is not None for data in encoded)
    return encoded


def as_received(ds: Dataset, explicit: bool) -> Dataset:
    """The identifier as the SCP decodes it from the network."""
    return decode(BytesIO(encode(ds, not explicit, True)), not explicit, True)


def assert_same(ds: Dataset, model: str, expected_count: int | None = None) -> list[Dataset]:
    """encoded_answers() == write_dataset(answers()) for the identifier built here and for the
    identifier as received in either transfer syntax; returns the answers."""
    answers = None
    for ident in (ds, as_received(ds, False), as_received(ds, True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answers = list(q.Answerer(q.build_query(ident, model), "PACSONE").answers())
            assert answers, "the query should answer"
            if expected_count is not None:
                assert len(answers) == expected_count
            for explicit in (False, True):
                expected = reference(answers, explicit)
                fast = list(q.Answerer(q.build_query(ident, model), "PACSONE").encoded_answers(explicit))
                assert len(fast) == len(expected)
                for got, want, answer in zip(fast, expected, answers):
                    assert got == want, (explicit, answer)
                _query, found = q.find_encoded(ident, model, "PACSONE", explicit_vr=explicit)
                assert list(found) == expected
    return answers


STUDY_KEYS = dict(
    PatientName="", PatientID="", PatientBirthDate="", PatientSex="", StudyDate="", StudyTime="",
    AccessionNumber="", StudyID="", StudyDescription="", ReferringPhysicianName="", ModalitiesInStudy="",
    NumberOfStudyRelatedInstances="", NumberOfStudyRelatedSeries="", StudyInstanceUID="", RetrieveAETitle="",
    InstanceAvailability="", InstitutionName="", NameOfPhysiciansReadingStudy="",
)


def test_study_level_workstation_keys(archive):
    answers = assert_same(identifier("STUDY", **STUDY_KEYS), q.STUDY_ROOT, expected_count=6)
    by_uid = {a.StudyInstanceUID: a for a in answers}
    assert set(by_uid) == {STUDY_A, STUDY_B, STUDY_C, STUDY_D, STUDY_E, STUDY_F}
    assert by_uid[STUDY_D].SpecificCharacterSet == "ISO_IR 192"  # a non-ASCII row
    assert "SpecificCharacterSet" not in by_uid[STUDY_A]
    assert list(by_uid[STUDY_D].ModalitiesInStudy) == ["CT", "SR"]


def test_study_level_header_keys_sequence_and_odd_values(archive):
    keys = dict(STUDY_KEYS, ProcedureCodeSequence=Sequence(), OperatorsName="", PatientComments="", ImageType="",
                StationName="", ProtocolName="", Modality="", NumberOfSeriesRelatedInstances="",
                SpecificCharacterSet="ISO_IR 192", OtherPatientIDs="", PatientWeight="", IssuerOfPatientID="")
    ds = identifier("STUDY", **keys)
    ds.add_new(0x00090010, "LO", "ACME 1.0")  # private keys are not returned
    ds.add_new(0x00091001, "LO", "")
    answers = assert_same(ds, q.STUDY_ROOT, expected_count=6)
    d = next(a for a in answers if a.StudyInstanceUID == STUDY_D)
    assert d.ProcedureCodeSequence[0].CodeValue == "CTHEAD" and len(d.OperatorsName) == 2
    assert 0x00091001 not in d


def test_matching_keys_with_odd_values(archive):
    assert_same(identifier("STUDY", PatientName="MÜL*", StudyInstanceUID="", StudyDescription="",
                           ReferringPhysicianName=""), q.STUDY_ROOT, expected_count=1)
    assert_same(identifier("STUDY", StudyInstanceUID=[STUDY_A, STUDY_E, STUDY_F], PatientName="",
                           StudyDate="", StudyTime="", InstitutionName=""), q.STUDY_ROOT, expected_count=3)
    assert_same(identifier("STUDY", ModalitiesInStudy="SR", StudyInstanceUID=""), q.STUDY_ROOT, expected_count=1)


def test_patient_level(archive):
    keys = dict(PatientName="", PatientID="", PatientBirthDate="", PatientSex="", IssuerOfPatientID="",
                NumberOfPatientRelatedStudies="", NumberOfPatientRelatedSeries="",
                NumberOfPatientRelatedInstances="", OtherPatientIDs="", PatientComments="", RetrieveAETitle="")
    answers = assert_same(identifier("PATIENT", **keys), q.PATIENT_ROOT, expected_count=6)
    assert {a.PatientID for a in answers} == {"P1", "P2", "X3", "M4", "E5", "FIVE5"}


@pytest.mark.parametrize("model", [q.PATIENT_ROOT, q.STUDY_ROOT])
def test_series_level(archive, model):
    keys = dict(StudyInstanceUID="", SeriesInstanceUID="", Modality="", SeriesNumber="", SeriesDescription="",
                BodyPartExamined="", SeriesDate="", SeriesTime="", NumberOfSeriesRelatedInstances="",
                RetrieveAETitle="", InstitutionName="", OperatorsName="", StudyDescription="", PatientName="",
                NumberOfStudyRelatedInstances="")
    if model == q.PATIENT_ROOT:
        keys["PatientID"] = ""
    answers = assert_same(identifier("SERIES", **keys), model, expected_count=8)
    assert {a.Modality for a in answers} == {"CT", "MR", "US", "SR", "OT"}


@pytest.mark.parametrize("model", [q.PATIENT_ROOT, q.STUDY_ROOT])
def test_image_level(archive, model):
    keys = dict(StudyInstanceUID="", SeriesInstanceUID="", SOPInstanceUID="", SOPClassUID="", InstanceNumber="",
                Rows="", Columns="", BitsAllocated="", ImageType="", PixelSpacing="", SliceThickness="",
                WindowCenter="", Manufacturer="", ProcedureCodeSequence=Sequence(), PatientName="",
                InstanceAvailability="", RetrieveAETitle="", ContentDate="", AcquisitionDateTime="",
                NumberOfFrames="", ReferencedImageSequence=Sequence())
    if model == q.PATIENT_ROOT:
        keys["PatientID"] = ""
    answers = assert_same(identifier("IMAGE", **keys), model, expected_count=9)
    d = next(a for a in answers if a.SOPInstanceUID == STUDY_D + ".1.1")
    assert list(d.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"] and d.Rows == 32


def test_an_ambiguous_vr_goes_through_pydicom(archive):
    """Smallest Image Pixel Value is 'US or SS': write_dataset decides, so the whole answer
    is pydicom's where the header has no stored VR for it."""
    assert_same(identifier("IMAGE", SOPInstanceUID="", SmallestImagePixelValue=None, Rows=""), q.STUDY_ROOT,
                expected_count=9)


def test_group_length_and_unknown_public_tags(archive):
    ds = identifier("STUDY", StudyInstanceUID="", PatientName="")
    ds.add_new(0x00080000, "UL", 0)  # a group length: never written
    ds.add_new(0x00089999, "UN", b"")  # a public tag no dictionary knows
    assert_same(ds, q.STUDY_ROOT, expected_count=6)


# --- The codec alone, against pydicom -----------------------------------------------------------------


def pydicom_bytes(elements, explicit: bool) -> bytes:
    ds = Dataset()
    for tag, vr, value in elements:
        ds.add_new(tag, vr, value)
    data = encode(ds, not explicit, True)
    assert data is not None
    return data


ELEMENTS = [
    (0x00080020, "DA", "20240105"), (0x00080030, "TM", "10150"), (0x00080050, "SH", ""),
    (0x00080052, "CS", "STUDY"), (0x00080054, "AE", "PACS"), (0x00080056, "CS", "ONLINE"),
    (0x00080061, "CS", ["CT", "MR", "SR"]), (0x00080061, "CS", ["CT"]), (0x00080061, "CS", []),
    (0x00080061, "CS", ["", ""]), (0x00080070, "LO", None), (0x00080080, "LO", "General\\Hospital"),
    (0x00080090, "PN", "Doe^John^^^"), (0x00080090, "PN", "Doe^John=="), (0x00080090, "PN", "A^B=C^D"),
    (0x00080090, "PN", ["A^B", "C"]), (0x00080090, "PN", "A=B=C=D"), (0x00080090, "PN", "=="),
    (0x00080090, "PN", "A^^=="), (0x00080090, "PN", "A\\B=\\C=="), (0x00080090, "PN", "=B"),
    (0x00080090, "PN", "Weiß^Anna=ヤマダ^タロウ="), (0x00080090, "PN", "A=^="), (0x00081030, "LO", "CHEST "),
    (0x00081060, "PN", ""),
    (0x00100020, "LO", "ID1"), (0x00101010, "AS", "045Y"), (0x00101030, "DS", "72.5"), (0x00101030, "DS", 72.5),
    (0x00104000, "LT", "a\\b"), (0x00180050, "DS", ["1.25", "2"]), (0x0020000D, "UI", "1.2.3"),
    (0x0020000D, "UI", " 1.2.34 "), (0x0020000D, "UI", ["1.2", "1.23"]), (0x0020000D, "UI", ""),
    (0x00200011, "IS", 12), (0x00200011, "IS", 0), (0x00200011, "IS", [1, 22, 333]), (0x00200011, "IS", "7"),
    (0x00201208, "IS", None), (0x00280010, "US", 512), (0x00280010, "US", [1, 2]), (0x00280010, "US", None),
    (0x00181150, "IS", -5), (0x00181041, "DS", None), (0x00280030, "DS", [0.5, 0.5]),
    (0x00540081, "US", 3), (0x00189087, "FD", 1000.5), (0x00189087, "FD", [1.0, 2]),
    (0x00200060, "CS", "L"), (0x00321060, "LO", "x" * 101), (0x00400275, "SQ", []), (0x0040A124, "UI", "1.2"),
    (0x0040A30A, "DS", "1e3"), (0x00080018, "UI", "1.2.840.10008.1.2.1\0"), (0x00100010, "PN", None),
    (0x00080021, "DA", "20240101-20240102"), (0x00081040, "LO", "é"), (0x00081090, "LO", ["a", "bé"]),
    (0x00100010, "PN", "Ämi^Ö"), (0x00100020, "LO", "x" * 70000), (0x00181030, "LO", "y" * 70001),
    (0x00080000, "UL", 4), (0x00321033, "LO", "Müller ギ"), (0x00100021, "LO", ["", ""]),
    (0x00100010, "PN", "Люкceмбypг"), (0x00081030, "LO", "Διονυσιος"), (0x00100010, "PN", "Wang^XiaoDong=王^小东"),
    (0x00081030, "LO", "胸部平扫 表"), (0x00080080, "LO", "Łódź"), (0x00100010, "PN", "שרון^דבורה"),
]


@pytest.mark.parametrize("charset", [None, "ISO_IR 192", "ISO_IR 100", "ISO 2022 IR 6", ["", "ISO 2022 IR 87"],
                                     "ISO_IR 101", "ISO_IR 126", "ISO_IR 138", "ISO_IR 144", "ISO_IR 166",
                                     "GB18030", "GBK"])
@pytest.mark.parametrize("explicit", [False, True])
def test_codec_matches_write_dataset_element_by_element(charset, explicit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for element in ELEMENTS:
            elements = [element] if charset is None else [(0x00080005, "CS", charset), element]
            assert codec.encode(elements, explicit) == pydicom_bytes(elements, explicit), element


@pytest.mark.parametrize("explicit", [False, True])
def test_codec_matches_write_dataset_for_whole_identifiers(explicit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_tag = {}
        for tag, vr, value in ELEMENTS:
            by_tag[tag] = (tag, vr, value)
        elements = sorted(by_tag.values(), key=lambda e: e[0])
        assert codec.encode(elements, explicit) == pydicom_bytes(elements, explicit)
        with_charset = [(0x00080005, "CS", "ISO_IR 192"), *elements]
        assert codec.encode(with_charset, explicit) == pydicom_bytes(with_charset, explicit)


def test_codec_fast_path_is_taken_for_plain_values(monkeypatch):
    """The common values never reach pydicom."""
    def no_pydicom(*_args):
        raise AssertionError("pydicom was used")

    monkeypatch.setattr(codec, "pydicom_element", no_pydicom)
    elements = [(0x00080005, "CS", "ISO_IR 192"), (0x00080020, "DA", "20240105"), (0x00080052, "CS", "STUDY"),
                (0x00080061, "CS", ["CT", "MR"]), (0x00100010, "PN", "Müller^Jürgen"), (0x00201208, "IS", 42),
                (0x0020000D, "UI", "1.2.3"), (0x00280010, "US", 512), (0x00400275, "SQ", None)]
    elements.sort(key=lambda e: e[0])
    assert codec.encode(elements, True) == pydicom_bytes(elements, True)


def test_codec_refuses_ambiguous_vrs():
    with pytest.raises(codec.NotFast):
        codec.encode([(0x00280106, "US or SS", None)], True)


def test_common_answers_never_reach_pydicom(archive, monkeypatch):
    """Workstation keys at STUDY level (non-ASCII rows included) and plain header keys at IMAGE
    level are written by the codec alone."""
    def no_pydicom(*_args):
        raise AssertionError("pydicom was used")

    keys = {k: v for k, v in STUDY_KEYS.items() if k != "InstitutionName"}
    implicit = [encode(ds, True, True) for ds in q.find(identifier("STUDY", **keys), q.STUDY_ROOT)[1]]
    image_keys = dict(SOPInstanceUID="", SOPClassUID="", InstanceNumber="", Rows="", Columns="", ImageType="",
                      Manufacturer="", SeriesInstanceUID=STUDY_A + ".1")
    explicit = [encode(ds, False, True) for ds in q.find(identifier("IMAGE", **image_keys), q.STUDY_ROOT)[1]]
    monkeypatch.setattr(codec, "pydicom_element", no_pydicom)
    monkeypatch.setattr(codec, "pydicom_encode", no_pydicom)
    assert list(q.find_encoded(identifier("STUDY", **keys), q.STUDY_ROOT, explicit_vr=False)[1]) == implicit
    assert list(q.find_encoded(identifier("IMAGE", **image_keys), q.STUDY_ROOT, explicit_vr=True)[1]) == explicit
    assert len(implicit) == 6 and len(explicit) == 2
