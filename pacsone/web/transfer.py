"""Getting images out and in from the browser: download a study as ZIP (Download), upload files
or a ZIP with a progress bar (Upload), import a DICOMDIR folder or ZIP that is on the server
(Import). Uploads and imports run as jobs through the one ingest path.

Import reads only below PACS_IMPORT_ROOTS, and says the same for a path that is missing and one
that is outside them; an uploaded ZIP over the expansion limits is refused at once."""

import json
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, Outcome, record
from routing.jobs import start_job
from routing.models import Job

from ..access import access_job, access_study, journal_denial, studies_for
from ..download import study_zip_chunks
from ..humanize import count, date, person_name
from ..importer import NOT_IMPORTABLE, importable, zip_problem
from ..upload import results_path, shown_name


@privilege_required(Privilege.DOWNLOAD)
def download_study(request, study_uid):
    study = access_study(request, study_uid, action=Action.DOWNLOAD)
    record(Action.DOWNLOAD, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target="study ZIP")
    response = StreamingHttpResponse(study_zip_chunks(study), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}.zip"'
    return response


def _staging_dir() -> Path:
    folder = settings.SHARED_DIR / "uploads"
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
    # The names the user knows the files by: the path inside a dropped folder when the page sent
    # it (Django keeps only the last part of an uploaded file's name), else the file's name.
    paths = request.POST.getlist("paths")
    staging = _staging_dir()
    display_names = {}
    for number, upload_file in enumerate(files):
        # Saved under a number, never under the uploaded name (invariant 5); the name is kept
        # only to tell the user which of their files a result is about.
        saved_as = f"{number:06d}.upload"
        with open(staging / saved_as, "wb") as out:
            for chunk in upload_file.chunks():
                out.write(chunk)
        given = paths[number] if number < len(paths) and paths[number] else Path(upload_file.name or "").name
        display_names[saved_as] = shown_name(given)
        if problem := zip_problem(staging / saved_as):
            shutil.rmtree(staging, ignore_errors=True)
            record(Action.UPLOAD, request=request, outcome=Outcome.FAILURE, detail=f"file {number + 1}: {problem}")
            return JsonResponse({"error": f"{display_names[saved_as]}: {problem}. Nothing was stored."}, status=400)
    files_word = count(len(files), "file", "files")
    job = start_job(Job.Kind.UPLOAD, f"{files_word} uploaded by {request.user.username}", request.user,
                    "pacsone.upload.upload_job", str(staging), request.user.username, display_names)
    record(Action.UPLOAD, request=request, target=f"job {job.pk}", detail=files_word)
    return JsonResponse({"job": job.pk, "url": reverse("routing:job-detail", args=[job.pk]),
                         "status": reverse("upload-status", args=[job.pk])}, status=202)


@privilege_required(Privilege.UPLOAD)
def upload_status(request, job_pk: int):
    """The upload page's view of its job: progress, then one result per file, each stored file
    linked to its study while the user may see it. Only the job's owner reads it."""
    job = access_job(request, job_pk, action=Action.UPLOAD)
    if job.owner_id != request.user.pk or job.kind != Job.Kind.UPLOAD:
        journal_denial(request, Action.UPLOAD, f"upload job {job.pk}", "not this user's upload")
        raise Http404("Not found.")
    results = []
    path = results_path(job.pk)
    if job.state == Job.State.DONE and path.is_file():
        results = json.loads(path.read_text())
    uids = {result.get("study_uid") for result in results if result.get("study_uid")}
    visible = {study.study_instance_uid: study for study in studies_for(request.user).filter(study_instance_uid__in=uids)}
    for result in results:
        study = visible.get(result.pop("study_uid", ""))
        if study is not None:
            result["study_url"] = reverse("study", args=[study.study_instance_uid])
            result["study"] = " · ".join(part for part in (
                person_name(study.patient.patient_name) or study.patient.patient_id,
                study.study_description, date(study.study_date)) if part)
    return JsonResponse({"state": job.state, "done": job.done, "total": job.total, "failed": job.failed,
                         "message": job.message, "results": results,
                         "job_url": reverse("routing:job-detail", args=[job.pk])})


@privilege_required(Privilege.IMPORT)
def import_from_server(request):
    """A folder (e.g. a CD copied to the server: its DICOMDIR says what to import), a DICOMDIR or
    a ZIP file below an import root (PACS_IMPORT_ROOTS)."""
    path_text = request.POST.get("path", "").strip() if request.method == "POST" else ""
    if request.method == "POST":
        path = importable(path_text)
        if path is None:
            # The same words whether the path is missing or outside the roots: no existence oracle.
            messages.error(request, gettext("The path %(NOT_IMPORTABLE)s.") % {"NOT_IMPORTABLE": NOT_IMPORTABLE})
            record(Action.IMPORT, request=request, outcome=Outcome.DENIED, detail=path_text[:500])
        else:
            job = start_job(Job.Kind.IMPORT, f"import of {path_text}", request.user, "pacsone.importer.import_job",
                            [str(path)], "import", request.user.username, "", None, True)
            record(Action.IMPORT, request=request, target=f"job {job.pk}", detail=path_text)
            return redirect("routing:job-detail", job.pk)
    return render(request, "pacsone/import.html", {"path": path_text, "roots": settings.PACS_IMPORT_ROOTS})
