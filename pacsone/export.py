"""Export studies to DICOM media: a folder with a DICOMDIR (pydicom's FileSet), optionally
zipped, with a small HTML index a person can open without a DICOM viewer.

Runs as a job (routing.jobs): `export_studies(progress, study_pks, zipped, username)`.
Instances whose header lacks an attribute that a DICOMDIR record requires (Study ID, Series
Number, ...) are exported with that attribute filled in on the exported copy, and the job's
message says so; the archived file is never changed.
"""

import datetime
import html
import json
import shutil
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from pydicom import dcmread
from pydicom.fileset import FileSet

from audit.journal import Action, record

from . import humanize, storage
from .humanize import count
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
    return settings.SHARED_DIR / "exports"


def _complete_for_media(ds):
    """The dataset with the record attributes it lacks filled in; and the names filled."""
    filled = []
    for keyword, default in RECORD_DEFAULTS.items():
        if keyword not in ds or ds[keyword].value in (None, ""):
            setattr(ds, keyword, default)
            filled.append(keyword)
    return ds, filled


VIEWER_FOLDER = "VIEWER"
VIEWER_SIZE = 512
VIEWER_SCRIPT = """
document.querySelectorAll('.stack').forEach(function (stack) {
  var images = JSON.parse(stack.dataset.images), img = stack.querySelector('img'),
      slider = stack.querySelector('input'), label = stack.querySelector('span'), i = 0;
  function show(n) { i = Math.max(0, Math.min(images.length - 1, n)); img.src = images[i];
    slider.value = i; label.textContent = (i + 1) + ' / ' + images.length; }
  slider.max = images.length - 1;
  slider.addEventListener('input', function () { show(+slider.value); });
  img.addEventListener('wheel', function (e) { e.preventDefault(); show(i + (e.deltaY > 0 ? 1 : -1)); });
  stack.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowRight') show(i + 1);
    if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') show(i - 1); });
  show(0);
});
"""


def write_previews(folder: Path, series, instances: list[Instance]) -> list[str]:
    """JPEG previews of a series' images for the HTML viewer; images that cannot be decoded are
    left out. Returns their paths relative to the media folder."""
    from .rendering import RenderError, RenderRequest, render

    request = RenderRequest(size=VIEWER_SIZE, fmt="jpeg")
    target = folder / VIEWER_FOLDER / f"S{series.pk}"
    names = []
    for number, instance in enumerate(instances):
        try:
            data = render(instance, request)
        except (RenderError, OSError, ValueError):
            continue
        target.mkdir(parents=True, exist_ok=True)
        (target / f"I{number:05d}.JPG").write_bytes(data)
        names.append(f"{VIEWER_FOLDER}/S{series.pk}/I{number:05d}.JPG")
    return names


def _series_html(series) -> str:
    heading = (f"{html.escape(series.modality)} series {series.series_number or ''}: "
               f"{html.escape(series.series_description)} ({count(series.instance_count, 'image', 'images')})")
    if not series.previews:
        return f"<li>{heading}</li>"
    return (f"<li>{heading}<div class='stack' tabindex='0' data-images='{html.escape(json.dumps(series.previews))}'>"
            f"<img alt='image'><br><input type='range' min='0' value='0'> <span></span></div></li>")


def write_index(folder: Path, studies: list[Study]) -> None:
    """index.html: the patients, studies and series on the media, with a small stack viewer of
    JPEG previews (wheel, arrow keys or slider), for a person without a DICOM viewer."""
    rows = []
    for study in studies:
        series_rows = "".join(_series_html(s) for s in study.exported_series)
        patient = study.patient
        about = ", ".join(filter(None, [patient.patient_id,
                                        humanize.age_and_sex(patient.birth_date, patient.sex, study.study_date)]))
        rows.append(
            f"<section><h2>{html.escape(humanize.person_name(patient.patient_name))} "
            f"<small>({html.escape(about)})</small></h2>"
            f"<p>{html.escape(humanize.study_when(study.study_date, study.study_time))} {html.escape(study.study_description)} "
            f"· accession {html.escape(study.accession_number) or '—'}</p><ul>{series_rows}</ul></section>"
        )
    made = humanize.date_time(timezone.now())
    (folder / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>DICOM media</title>"
        "<style>body{font:15px system-ui;margin:2rem;max-width:900px}section{border-bottom:1px solid #ddd}"
        ".stack img{background:#000;max-width:100%;width:512px}.stack{margin:.5rem 0 1rem}</style>"
        f"<h1>DICOM media</h1><p>Made by PacsOne on {made}. Scroll through each series below (mouse wheel, "
        "arrow keys or the slider), or open the DICOMDIR with a DICOM viewer for diagnostic viewing.</p>"
        + "".join(rows) + f"<script>{VIEWER_SCRIPT}</script>",
        encoding="utf-8",
    )


def do_export_studies(studies: list[Study], zipped: bool, with_viewer: bool, *, acting_user, request=None):
    """A person exports studies they may see (Export): queued as a job whose result only they
    download; one journal entry per study, written with the job."""
    from routing.jobs import start_job
    from routing.models import Job

    from .actions import require_visible

    require_visible(acting_user, studies, Action.EXPORT, request=request)
    title = f"Export of {count(len(studies), 'study', 'studies')} to DICOM media" + (" (ZIP)" if zipped else "")
    with transaction.atomic():
        job = start_job(Job.Kind.EXPORT, title, acting_user, "pacsone.export.export_studies",
                        [s.pk for s in studies], zipped, with_viewer, studies=studies)
        for study in studies:
            record(Action.EXPORT, request=request, user=acting_user, patient_id=study.patient.patient_id,
                   study_uid=study.study_instance_uid, target=f"job {job.pk}")
    return job


def export_studies(progress, study_pks: list[int], zipped: bool = True, with_viewer: bool = True,
                   label: str = "export") -> str:
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
        try:
            with storage.open_stored(instance) as f:
                ds = dcmread(f)
            try:
                fileset.add(ds)
            except ValueError:
                ds, filled = _complete_for_media(ds)
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
    by_series = {}
    for instance in instances:
        by_series.setdefault(instance.series_id, []).append(instance)
    for study in studies:
        study.exported_series = list(study.series.annotate(instance_count=Count("instances")).order_by("series_number"))
        for series in study.exported_series:
            series.previews = write_previews(folder, series, by_series.get(series.pk, [])) if with_viewer else []
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
    progress.set_result(str(result.relative_to(settings.SHARED_DIR)))
    progress.advance()
    message = f"{count(len(fileset), 'instance', 'instances')} of {count(len(studies), 'study', 'studies')} written to {result.name}"
    if filled_any:
        message += f"; filled in on the copies for the DICOMDIR: {', '.join(sorted(filled_any))}"
    if problems:
        message += f"; {count(len(problems), 'instance', 'instances')} could not be exported: " + "; ".join(problems[:10])
    return message
