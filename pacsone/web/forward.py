"""Forward a study the user may see to a registered remote AE (Forward privilege); runs as a job."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, Outcome, record

from ..access import access_study
from ..forward import do_forward_study
from ..models import RemoteAE
from .studies import subject


@require_POST
@privilege_required(Privilege.FORWARD)
def forward_study(request, study_uid: str):
    study = access_study(request, study_uid, action=Action.FORWARD)
    ae = request.POST.get("ae", "")
    remote = RemoteAE.objects.filter(pk=int(ae)).first() if ae.isdigit() else None
    if remote is None:
        record(Action.FORWARD, request=request, outcome=Outcome.FAILURE, detail="no such remote AE", **subject(study))
        messages.error(request, gettext("Choose a registered remote AE to forward to."))
        return redirect("study", study.study_instance_uid)
    job = do_forward_study(study, remote, acting_user=request.user, request=request)
    return redirect("routing:job-detail", job.pk)
