"""Getting images out and in from the browser: download a study as ZIP (Download), upload files
or a ZIP with a progress bar (Upload), import a DICOMDIR folder or ZIP that is on the server
(Import). Uploads and imports run as jobs through the one ingest path.

Import reads only below PACS_IMPORT_ROOTS, and says the same for a path that is missing and one
that is outside them; an uploaded ZIP over the expansion limits is refused at once."""

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, Outcome, record
from routing.jobs import start_job
from routing.models import Job

from ..access import access_study
from ..download import study_zip_chunks
from ..importer import NOT_IMPORTABLE, importable, zip_problem


@privilege_required(Privilege.DOWNLOAD)
def download_study(request, study_uid):
    study = access_study(request, study_uid, action=Action.DOWNLOAD)
    record(Action.DOWNLOAD, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target="study ZIP")
    response = StreamingHttpResponse(study_zip_chunks(study), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}.zip"'
    return response


def _staging_dir() -> Path:
    folder = settings.DATA_DIR / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder))


@privilege_required(Privilege.UPLOAD)
def upload(request):
    """GET: the upload page. POST (from its script): the files, answered with the job's URL."""
    limit = settings.PACS_UPLOAD_MAX_MB * 1024 * 1024
    if request.method != "POST":
        return render(request, "pacsone/upload.html", {"limit_mb": settings.PACS_UPLOAD_MAX_MB})
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        record(Action.UPLOAD, request=request, outcome=Outcome.FAILURE, detail="too large")
        return JsonResponse({"error": f"The upload is larger than {settings.PACS_UPLOAD_MAX_MB} MB."}, status=413)
    files = request.FILES.getlist("files")
    if not files:
        return JsonResponse({"error": "Choose one or more DICOM files or ZIP files."}, status=400)
    staging = _staging_dir()
    display_names = {}
    for number, upload_file in enumerate(files):
        # Saved under a number, never under the uploaded name (invariant 5); the name is kept
        # only to tell the user which of their files a problem is about.
        saved_as = f"{number:06d}.upload"
        with open(staging / saved_as, "wb") as out:
            for chunk in upload_file.chunks():
                out.write(chunk)
        display_names[saved_as] = f"file {number + 1} ({Path(upload_file.name or '').name[:128]})"
        if problem := zip_problem(staging / saved_as):
            shutil.rmtree(staging, ignore_errors=True)
            record(Action.UPLOAD, request=request, outcome=Outcome.FAILURE, detail=f"file {number + 1}: {problem}")
            return JsonResponse({"error": f"{display_names[saved_as].capitalize()}: {problem}."}, status=400)
    job = start_job(Job.Kind.UPLOAD, f"{len(files)} file(s) uploaded by {request.user.username}", request.user,
                    "pacsone.importer.import_job", [str(staging)], "upload", request.user.username, str(staging),
                    display_names)
    record(Action.UPLOAD, request=request, target=f"job {job.pk}", detail=f"{len(files)} file(s)")
    return JsonResponse({"job": job.pk, "url": reverse("routing:job-detail", args=[job.pk])}, status=202)


@privilege_required(Privilege.IMPORT)
def import_from_server(request):
    """A folder (e.g. a CD copied to the server: its DICOMDIR says what to import), a DICOMDIR or
    a ZIP file below an import root (PACS_IMPORT_ROOTS)."""
    path_text = request.POST.get("path", "").strip() if request.method == "POST" else ""
    if request.method == "POST":
        path = importable(path_text)
        if path is None:
            # The same words whether the path is missing or outside the roots: no existence oracle.
            messages.error(request, f"The path {NOT_IMPORTABLE}.")
            record(Action.IMPORT, request=request, outcome=Outcome.DENIED, detail=path_text[:500])
        else:
            job = start_job(Job.Kind.IMPORT, f"import of {path_text}", request.user, "pacsone.importer.import_job",
                            [str(path)], "import", request.user.username, "", None, True)
            record(Action.IMPORT, request=request, target=f"job {job.pk}", detail=path_text)
            return redirect("routing:job-detail", job.pk)
    return render(request, "pacsone/import.html", {"path": path_text, "roots": settings.PACS_IMPORT_ROOTS})
