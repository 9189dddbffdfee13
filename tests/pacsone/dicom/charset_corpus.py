"""The character-set corpus: pydicom's `chr*.dcm` files (shipped in its wheel) and files made
here, with what pydicom itself decodes from each (the reference every way in is compared with)."""

from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_charset_files

from tests.helpers import make_dataset, write_dataset

# Made here: name -> (Specific Character Set, attributes).
MADE = {
    "utf8-mueller": ("ISO_IR 192", dict(
        patient_name="MÜLLER^JÜRGEN", patient_id="UTF8-1", InstitutionName="Universitätsklinikum Köln",
        ReferringPhysicianName="SMITH^JANE", StudyDescription="Schädel nativ", SeriesDescription="Axial ÜBERSICHT",
        NameOfPhysiciansReadingStudy="Weiß^Anna")),
    "utf8-yamada": ("ISO_IR 192", dict(
        patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう", patient_id="UTF8-2", InstitutionName="東京病院",
        ReferringPhysicianName="Suzuki^Ichiro=鈴木^一郎", StudyDescription="頭部 CT")),
    "latin1": ("ISO_IR 100", dict(
        patient_name="Béranger^François", patient_id="LATIN1-1", InstitutionName="Hôpital Européen",
        ReferringPhysicianName="Dubois^Hélène", StudyDescription="Thorax réalisé")),
    "gb18030": ("GB18030", dict(
        patient_name="山田^太郎", patient_id="GB-1", InstitutionName="北京协和医院",
        ReferringPhysicianName="WANG^XIAODONG", StudyDescription="胸部平扫")),
}
# pydicom's files without the UIDs an archive needs (they hold sequences only) are left out.
INCOMPLETE = {"chrSQEncoding.dcm", "chrSQEncoding1.dcm"}
TEXT_KEYWORDS = ("PatientName", "InstitutionName", "ReferringPhysicianName", "StudyDescription",
                 "SeriesDescription", "NameOfPhysiciansReadingStudy")


def pydicom_charset_files() -> dict[str, Path]:
    files = {Path(p).name: Path(p) for p in get_charset_files("chr*.dcm")}
    return {name: path for name, path in sorted(files.items()) if name not in INCOMPLETE}


CORPUS = [*MADE, *pydicom_charset_files()]


def corpus_file(name: str, folder: Path) -> Path:
    """The file of a corpus entry: pydicom's own, or made in `folder`."""
    if name in MADE:
        charset, attributes = MADE[name]
        ds = make_dataset(**attributes)
        ds.SpecificCharacterSet = charset
        return write_dataset(ds, folder / f"{name}.dcm")
    path = pydicom_charset_files()[name]
    ds = dcmread(path)
    if ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID:
        return path
    # chrJapMulti*.dcm: the file meta names another instance, which the archive refuses; a copy
    # with the meta made right (the data set's raw bytes unchanged).
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return write_dataset(ds, folder / name)


@dataclass
class Decoded:
    """What pydicom decodes from a file: the text values (stripped, as the index keeps them)."""

    charset: object
    study_uid: str
    series_uid: str
    sop_uid: str
    texts: dict[str, str]
    json: dict  # DICOM JSON of the text attributes

    @property
    def patient_name(self) -> str:
        return self.texts["PatientName"]


def decoded(path: Path) -> Decoded:
    ds = dcmread(path, stop_before_pixels=True)
    ds.decode()
    texts = {keyword: str(ds.get(keyword, "") or "").strip() for keyword in TEXT_KEYWORDS}
    json = {f"{ds.data_element(k).tag:08X}": ds.data_element(k).to_json_dict(None, 1024)
            for k in TEXT_KEYWORDS if k in ds}
    return Decoded(ds.get("SpecificCharacterSet"), ds.StudyInstanceUID, ds.SeriesInstanceUID,
                   ds.SOPInstanceUID, texts, json)
