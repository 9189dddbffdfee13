"""Start an export of studies the user may see (Export privilege); it runs as a job."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record
from routing.jobs import start_job
from routing.models import Job

from ..models import Study
from .actions import back

MAX_STUDIES_PER_EXPORT = 500


@require_POST
@privilege_required(Privilege.EXPORT)
def export_studies(request):
    uids = request.POST.getlist("study")
    studies = list(Study.objects.visible_to(request.user).filter(study_instance_uid__in=uids).select_related("patient"))
    if not studies or len(studies) != len(set(uids)):
        messages.error(request, "Choose one or more studies you may see to export.")
        return back(request)
    if len(studies) > MAX_STUDIES_PER_EXPORT:
        messages.error(request, f"Export at most {MAX_STUDIES_PER_EXPORT} studies at a time.")
        return back(request)
    zipped = request.POST.get("zipped", "on") == "on"
    with_viewer = request.POST.get("viewer", "on") == "on"
    first = studies[0].patient.patient_name.replace("^", " ") or studies[0].patient.patient_id
    title = f"{first}, {len(studies)} study(ies) to DICOM media" + (" (ZIP)" if zipped else "")
    job = start_job(Job.Kind.EXPORT, title, request.user, "pacsone.export.export_studies",
                    [s.pk for s in studies], zipped, with_viewer)
    for study in studies:
        record(Action.EXPORT, request=request, patient_id=study.patient.patient_id,
               study_uid=study.study_instance_uid, target=f"job {job.pk}")
    return redirect("routing:job-detail", job.pk)
