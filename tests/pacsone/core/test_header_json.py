"""The fast DICOM JSON of a header equals pydicom's, element by element."""

import json
import warnings
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacsone.header_json import header_json


def bulk(element) -> str:
    return f"bulkdata:{element.tag:08X}"


def pydicom_json(ds: Dataset) -> dict:
    """pydicom's DICOM JSON, skipping the elements whose conversion fails (as the ingest does)."""
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in ds.keys():
            try:
                result[f"{tag:08X}"] = ds[tag].to_json_dict(bulk, 1024)
            except Exception:
                pass
    return result


def same_json(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def read_twice(source) -> tuple[Dataset, Dataset]:
    def read():
        if isinstance(source, bytes):
            return dcmread(BytesIO(source), stop_before_pixels=True, force=True)
        return dcmread(source, stop_before_pixels=True, force=True)

    return read(), read()


# The files in pydicom's wheel (get_testdata_files() would try to download the others).
TEST_FILES = sorted(str(p) for p in (Path(pydicom.__file__).parent / "data" / "test_files").rglob("*") if p.is_file())


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_it_matches_pydicom_on_its_test_files(path):
    try:
        fast_input, reference_input = read_twice(path)
    except Exception:
        pytest.skip("pydicom cannot read it either")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = header_json(fast_input, 1024, bulk)
    assert same_json(fast, pydicom_json(reference_input))


def encoded(ds: Dataset, syntax: str) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def awkward_dataset() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.StudyDate = "20240105"
    ds.StudyTime = "101010.123"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.InstitutionName = "Hôpital Saint-Éloi"  # Latin-1 text
    ds.ReferringPhysicianName = "Doe^John=Ideo^Graphic"
    ds.PatientName = "Smith^Jane"
    ds.add_new(0x00081060, "PN", ["A^B", "C^D"])  # NameOfPhysiciansReadingStudy, two names
    ds.PatientID = "  ID 42  "
    ds.OtherPatientIDs = ["X", "", "Y"]
    ds.StudyDescription = "back\\slash"
    ds.ImageComments = "Text with a \\ backslash and trailing spaces   "
    ds.SliceThickness = "1.25"
    ds.add_new(0x00180088, "DS", "")  # SpacingBetweenSlices, empty
    ds.ImagePositionPatient = ["-125.0", "+3e2", ".5"]
    ds.InstanceNumber = "007"
    ds.add_new(0x00200013 + 1, "IS", "12")  # a tag that is not in the dictionary as IS
    ds.Rows = 512
    ds.Columns = 512
    ds.add_new(0x00280106, "US", 0)
    ds.add_new(0x00189219, "FD", [1.5, -2.25])  # Tag Angle Second Axis, two doubles
    ds.add_new(0x00189306, "FD", float("nan"))
    ds.add_new(0x00280009, "AT", [0x00100010, 0x00100020])  # FrameIncrementPointer
    ds.add_new(0x00291010, "OB", b"\x01\x02" * 700)  # private binary, bulk data
    ds.add_new(0x00291011, "LO", "private text")
    seq_item = Dataset()
    seq_item.CodeValue = "113"
    seq_item.CodingSchemeDesignator = "DCM"
    ds.ProcedureCodeSequence = [seq_item]
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_it_matches_pydicom_on_awkward_values(syntax):
    data = encoded(awkward_dataset(), syntax)
    fast_input, reference_input = read_twice(data)
    fast = header_json(fast_input, 1024, bulk)
    assert same_json(fast, pydicom_json(reference_input))
    assert fast["00080018"] == {"vr": "UI", "Value": ["1.2.3.4"]}
    assert fast["00291010"]["BulkDataURI"] == "bulkdata:00291010"  # VR UN when implicit


def test_non_latin_character_sets_go_through_pydicom():
    ds = awkward_dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=\033$B;3ED\033(B^\033$BB@O:\033(B"
    fast_input, reference_input = read_twice(encoded(ds, ExplicitVRLittleEndian))
    assert same_json(header_json(fast_input, 1024, bulk), pydicom_json(reference_input))


def test_repeated_values_come_from_the_memo_with_the_same_json(monkeypatch):
    """Headers of one series repeat most values: the second header's JSON is looked up, equal to
    pydicom's, and the memo stays bounded."""
    from pacsone import header_json as module

    memo = module._Memo(True)
    monkeypatch.setattr(module, "_memos", {True: memo, False: module._Memo(False)})
    monkeypatch.setattr(memo, "MAX_ENTRIES", 8)
    converted = []
    real = module._raw_element_json
    monkeypatch.setattr(module, "_raw_element_json", lambda raw, ascii_text: converted.append(raw.tag) or real(raw, ascii_text))
    for number in (1, 2):
        ds = Dataset()
        ds.PatientName, ds.Modality, ds.Rows, ds.InstanceNumber = "DOE^JANE", "MR", 256, number
        ds.SOPInstanceUID = f"1.2.3.{number}"
        encoded = BytesIO()
        ds.save_as(encoded, implicit_vr=False, little_endian=True)
        first, second = read_twice(encoded.getvalue())
        assert same_json(header_json(first, 1024, bulk), pydicom_json(second))
    assert converted.count(0x00100010) == 1 and converted.count(0x00200013) == 2  # the name once, each number
    assert len(memo._entries) <= 8
