"""A study as a ZIP of its DICOM files, streamed while it is built (no temp file, any size).

Names inside the ZIP come from validated UIDs and numbers only (invariant 5 in spirit): the
archive's files are never named after patient fields. A ZIP of several studies also holds
`studies.csv`, which says in people's terms (names, dates, descriptions; pacsone.humanize) which
study each folder holds."""

import csv
import io
import zipfile

from audit.report import csv_cell

from . import humanize, storage
from .models import Instance

MANIFEST = "studies.csv"
MANIFEST_COLUMNS = ["Folder", "Patient", "Patient ID", "Age and sex", "Study date", "Description", "Accession",
                    "Modalities", "Images"]

CHUNK = 1024 * 1024


class _Pipe:
    """A write-only file for ZipFile whose written bytes are collected and handed out."""

    def __init__(self):
        self.buffer = bytearray()
        self.position = 0

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def member_name(instance: Instance) -> str:
    series = instance.series
    folder = f"S{series.series_number:04d}_{series.modality or 'OT'}" if series.series_number is not None else f"S_{series.modality or 'OT'}"
    return f"{folder}_{series.series_instance_uid}/{instance.sop_instance_uid}.dcm"


def study_zip_chunks(study):
    """Yield the bytes of a ZIP holding every stored file of `study`."""
    return _zip_chunks([study], prefix=False)


def studies_zip_chunks(studies):
    """Yield the bytes of a ZIP holding every stored file of several studies, one folder each
    (named after the Study Instance UID)."""
    return _zip_chunks(studies, prefix=True)


def manifest_csv(studies) -> str:
    """The manifest of a several-study ZIP: one row per study folder, formatted for people (a
    cell a spreadsheet would run as a formula is quoted, as in the journal's CSV)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MANIFEST_COLUMNS)
    for study in studies:
        patient = study.patient
        writer.writerow([csv_cell(value) for value in (
            study.study_instance_uid, humanize.person_name(patient.patient_name), patient.patient_id,
            humanize.age_and_sex(patient.birth_date, patient.sex, study.study_date),
            humanize.study_when(study.study_date, study.study_time), study.study_description,
            study.accession_number, study.modalities_in_study.replace("\\", ", "), study.number_of_instances)])
    return out.getvalue()


def _zip_chunks(studies, *, prefix: bool):
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for study in studies:
            instances = (
                Instance.objects.filter(series__study=study)
                .select_related("series", "storage_location")
                .order_by("series__series_number", "series_id", "instance_number", "pk")
            )
            for instance in instances.iterator(chunk_size=500):
                name = member_name(instance)
                if prefix:
                    name = f"{study.study_instance_uid}/{name}"
                with storage.open_stored(instance) as src, archive.open(name, "w", force_zip64=True) as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
                        yield pipe.take()
                yield pipe.take()
        if prefix:
            archive.writestr(MANIFEST, "\ufeff" + manifest_csv(studies))  # BOM: spreadsheets read UTF-8
    yield pipe.take()
