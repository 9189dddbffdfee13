"""Export studies to DICOM media: a folder with a DICOMDIR (pydicom's FileSet), optionally
zipped, with a small HTML index a person can open without a DICOM viewer.

Runs as a job (routing.jobs): `export_studies(progress, study_pks, zipped, username)`.
Instances whose header lacks an attribute that a DICOMDIR record requires (Study ID, Series
Number, ...) are exported with that attribute filled in on the exported copy, and the job's
message says so; the archived file is never changed.
"""

import datetime
import html
import shutil
import zipfile
from pathlib import Path

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from pydicom import dcmread
from pydicom.fileset import FileSet

from . import storage
from .models import Instance, Study

# Attributes the DICOMDIR's PATIENT/STUDY/SERIES/IMAGE records need, with the value used on the
# exported copy when the archived header lacks them.
RECORD_DEFAULTS = {
    "PatientID": "UNKNOWN",
    "StudyDate": "19000101",
    "StudyTime": "000000",
    "StudyID": "1",
    "SeriesNumber": "1",
    "InstanceNumber": "1",
}


def exports_dir() -> Path:
    return settings.DATA_DIR / "exports"


def _complete_for_media(path: Path):
    """The dataset with the record attributes it lacks filled in; and the names filled."""
    ds = dcmread(path)
    filled = []
    for keyword, default in RECORD_DEFAULTS.items():
        if keyword not in ds or ds[keyword].value in (None, ""):
            setattr(ds, keyword, default)
            filled.append(keyword)
    return ds, filled


def write_index(folder: Path, studies: list[Study]) -> None:
    """index.html: the patients, studies and series on the media, for a person to read."""
    rows = []
    for study in studies:
        series_rows = "".join(
            f"<li>{html.escape(s.modality)} series {s.series_number or ''}: "
            f"{html.escape(s.series_description)} ({s.instance_count} images)</li>"
            for s in study.exported_series
        )
        rows.append(
            f"<section><h2>{html.escape(study.patient.patient_name.replace('^', ' '))} "
            f"<small>({html.escape(study.patient.patient_id)})</small></h2>"
            f"<p>{study.study_date or ''} {html.escape(study.study_description)} "
            f"· accession {html.escape(study.accession_number) or '—'}</p><ul>{series_rows}</ul></section>"
        )
    made = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    (folder / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>DICOM media</title>"
        "<style>body{font:15px system-ui;margin:2rem;max-width:900px}section{border-bottom:1px solid #ddd}</style>"
        f"<h1>DICOM media</h1><p>Made by PacsOne on {made}. Open the DICOMDIR with a DICOM viewer "
        "to see the images.</p>" + "".join(rows),
        encoding="utf-8",
    )


def export_studies(progress, study_pks: list[int], zipped: bool = True, label: str = "export") -> str:
    studies = list(Study.objects.filter(pk__in=study_pks).select_related("patient").order_by("pk"))
    instances = list(
        Instance.objects.filter(series__study__in=studies)
        .select_related("storage_location", "series")
        .order_by("series__study_id", "series__series_number", "series_id", "instance_number", "pk")
    )
    progress.start(len(instances) + 1)  # +1: writing the media
    fileset = FileSet()
    problems, filled_any = [], set()
    for instance in instances:
        path = storage.absolute_path(instance.storage_location, instance.file_path)
        try:
            try:
                fileset.add(path)
            except ValueError:
                ds, filled = _complete_for_media(path)
                fileset.add(ds)
                filled_any.update(filled)
            progress.advance()
        except Exception as exc:  # one bad instance must not sink the export
            problems.append(f"{instance.sop_instance_uid}: {exc}")
            progress.advance(failed=1)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = exports_dir() / f"{label}-{stamp}-{progress.job.pk}"
    folder.mkdir(parents=True, exist_ok=True)
    if len(fileset):
        fileset.write(folder)
    for study in studies:
        study.exported_series = list(study.series.annotate(instance_count=Count("instances")).order_by("series_number"))
    write_index(folder, studies)
    result = folder
    if zipped:
        archive = folder.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    z.write(file, file.relative_to(folder))
        shutil.rmtree(folder)
        result = archive
    progress.set_result(str(result.relative_to(settings.DATA_DIR)))
    progress.advance()
    message = f"{len(fileset)} instance(s) of {len(studies)} study(ies) written to {result.name}"
    if filled_any:
        message += f"; filled in on the copies for the DICOMDIR: {', '.join(sorted(filled_any))}"
    if problems:
        message += f"; {len(problems)} instance(s) could not be exported: " + "; ".join(problems[:10])
    return message
