"""Synthetic DICOM data sets for the storage benchmark, generated once and cached.

A data set is a folder `bench/out/data/<name>/` with one sub-folder per study and one
Explicit VR Little Endian Part-10 file per slice. A `manifest.json` written last marks the
folder as complete; a folder without it (an interrupted run) is generated again.

The images are a noisy ellipse "body" on air: plausible values, not a real anatomy. The files
are stored uncompressed, so the content only matters for realism, not for the timings.
"""

import datetime
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from tqdm import tqdm

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DataSetSpec:
    name: str  # "ct" or "mr"
    slices: int  # in total, spread evenly over the studies
    studies: int
    size: int  # rows = columns

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.slices}x{self.size}-{self.studies}studies"


@dataclass(frozen=True)
class DataSet:
    name: str
    folder: Path
    files: list[Path]
    total_bytes: int

    @property
    def count(self) -> int:
        return len(self.files)


def ensure(spec: DataSetSpec, data_root: Path) -> DataSet:
    """The cached data set for `spec`, generating it first if it is missing or incomplete."""
    folder = data_root / spec.folder_name
    if not (folder / MANIFEST).exists():
        if folder.exists():
            shutil.rmtree(folder)
        generate(spec, folder)
    return load(spec.name, folder)


def load(name: str, folder: Path) -> DataSet:
    files = sorted(folder.glob("*/*.dcm"))
    manifest = json.loads((folder / MANIFEST).read_text())
    if len(files) != manifest["files"]:
        raise RuntimeError(f"{folder}: {len(files)} files, the manifest says {manifest['files']}; delete it")
    return DataSet(name, folder, files, sum(f.stat().st_size for f in files))


def generate(spec: DataSetSpec, folder: Path) -> None:
    rng = np.random.default_rng(seed=len(spec.folder_name))
    per_study = split_evenly(spec.slices, spec.studies)
    with tqdm(total=spec.slices, desc=f"generating {spec.folder_name}", unit="file") as progress:
        for study_index, count in enumerate(per_study):
            study_folder = folder / f"study{study_index + 1}"
            study_folder.mkdir(parents=True)
            study = study_header(spec, study_index)
            body = body_phantom(spec.size, rng)
            for slice_index in range(count):
                ds = slice_dataset(spec, study, slice_index, body, rng)
                ds.save_as(study_folder / f"{slice_index + 1:04d}.dcm", enforce_file_format=True)
                progress.update()
    (folder / MANIFEST).write_text(json.dumps({"spec": spec.__dict__, "files": spec.slices}))


def split_evenly(total: int, parts: int) -> list[int]:
    """[250, 250, 250, 250] for (1000, 4); the first parts get the remainder."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# --- Pixel data ---------------------------------------------------------------------------------


def body_phantom(size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of an ellipse filling most of the field of view, slightly off-centre."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    cx, cy = rng.uniform(-0.03, 0.03, size=2)
    return ((x - cx) / 0.42) ** 2 + ((y - cy) / 0.33) ** 2 <= 1.0


def ct_pixels(body: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stored values (HU + 1024) of soft tissue (about 40 HU) in air (-1000 HU), with noise."""
    hu = np.where(body, 40, -1000).astype(np.int16)
    hu += rng.integers(-30, 31, size=body.shape, dtype=np.int16)
    return hu + 1024


def mr_pixels(body: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsigned signal intensities: bright tissue, dark background, both noisy."""
    signal = np.where(body, 900, 20).astype(np.uint16)
    signal += rng.integers(0, 60, size=body.shape, dtype=np.uint16)
    return signal


# --- Headers ------------------------------------------------------------------------------------


def study_header(spec: DataSetSpec, index: int) -> dict:
    """What all slices of one study share: patient, study, series and frame of reference."""
    number = index + 1
    date = (datetime.date(2026, 1, 5) + datetime.timedelta(days=index)).strftime("%Y%m%d")
    return {
        "PatientName": f"BENCH^{spec.name.upper()}{number}",
        "PatientID": f"BENCH-{spec.name.upper()}-{number:03d}",
        "PatientBirthDate": f"19{50 + index * 7:02d}0{1 + index % 9}15",
        "PatientSex": "MF"[index % 2],
        "StudyInstanceUID": generate_uid(),
        "SeriesInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
        "StudyDate": date,
        "StudyTime": f"{8 + index:02d}3000",
        "AccessionNumber": f"ACC{spec.name.upper()}{number:05d}",
        "StudyID": str(number),
        "StudyDescription": "CT CHEST ABDOMEN" if spec.name == "ct" else "MR BRAIN",
        "SeriesNumber": 2,
    }


def slice_dataset(spec: DataSetSpec, study: dict, slice_index: int, body, rng) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study["StudyDate"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study["StudyTime"]
    ds.AccessionNumber = study["AccessionNumber"]
    ds.ReferringPhysicianName = "REFERRER^RITA"
    ds.InstitutionName = "BENCH HOSPITAL"
    ds.Manufacturer = "PACSONE BENCH"
    ds.ManufacturerModelName = "SYNTH-1"
    ds.StationName = f"{spec.name.upper()}01"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                    "SeriesInstanceUID", "FrameOfReferenceUID", "StudyID", "StudyDescription",
                    "SeriesNumber"):
        setattr(ds, keyword, study[keyword])
    ds.InstanceNumber = slice_index + 1
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = spec.size
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    if spec.name == "ct":
        add_ct_attributes(ds, slice_index)
        pixels = ct_pixels(body, rng)
    else:
        add_mr_attributes(ds, slice_index)
        pixels = mr_pixels(body, rng)
    ds.PixelData = pixels.tobytes()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return ds


def add_ct_attributes(ds: Dataset, slice_index: int) -> None:
    thickness = 1.25
    z = -100.0 - slice_index * thickness
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.Modality = "CT"
    ds.SeriesDescription = "AXIAL 1.25mm"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = 120
    ds.SliceThickness = thickness
    ds.ImagePositionPatient = [-175.0, -175.0, z]
    ds.SliceLocation = z
    ds.PixelSpacing = [0.683594, 0.683594]
    ds.PixelRepresentation = 1  # signed
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400


def add_mr_attributes(ds: Dataset, slice_index: int) -> None:
    thickness = 3.0
    z = -60.0 + slice_index * thickness
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.Modality = "MR"
    ds.SeriesDescription = "T1 AXIAL"
    ds.BodyPartExamined = "HEAD"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 500
    ds.EchoTime = 15
    ds.MagneticFieldStrength = 1.5
    ds.SliceThickness = thickness
    ds.ImagePositionPatient = [-120.0, -120.0, z]
    ds.SliceLocation = z
    ds.PixelSpacing = [0.9375, 0.9375]
    ds.PixelRepresentation = 0  # unsigned
    ds.WindowCenter = 600
    ds.WindowWidth = 1200
