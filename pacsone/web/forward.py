"""Forward a study the user may see to a registered remote AE (Forward privilege); runs as a job."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, Outcome, record
from routing.jobs import start_job
from routing.models import Job

from ..models import RemoteAE
from .studies import subject
from ..visibility import visible_study_or_404


@require_POST
@privilege_required(Privilege.FORWARD)
def forward_study(request, study_uid: str):
    study = visible_study_or_404(request, study_uid)
    ae = request.POST.get("ae", "")
    remote = RemoteAE.objects.filter(pk=int(ae)).first() if ae.isdigit() else None
    if remote is None:
        record(Action.FORWARD, request=request, outcome=Outcome.FAILURE, detail="no such remote AE", **subject(study))
        messages.error(request, "Choose a registered remote AE to forward to.")
        return redirect("study", study.study_instance_uid)
    title = f"{study.patient.patient_name or study.patient.patient_id} to {remote.ae_title}"
    job = start_job(Job.Kind.FORWARD, title, request.user, "pacsone.forward.forward_job",
                    study.pk, remote.pk, request.user.username)
    record(Action.FORWARD, request=request, target=f"job {job.pk} to {remote.ae_title}", **subject(study))
    return redirect("routing:job-detail", job.pk)
