"""Start an export of studies the user may see (Export privilege); it runs as a job."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action

from ..access import journal_denial, studies_for
from ..export import do_export_studies
from .actions import back

MAX_STUDIES_PER_EXPORT = 500


@require_POST
@privilege_required(Privilege.EXPORT)
def export_studies(request):
    uids = set(request.POST.getlist("study"))
    studies = list(studies_for(request.user).filter(study_instance_uid__in=uids))
    if not studies or len(studies) != len(uids):
        if uids:  # some study asked for does not exist or is hidden: refused, and journaled
            journal_denial(request, Action.EXPORT, "export", f"{len(uids) - len(studies)} of {len(uids)} "
                           "studies asked for do not exist or are not visible to this user")
        messages.error(request, gettext("Choose one or more studies you may see to export."))
        return back(request)
    if len(studies) > MAX_STUDIES_PER_EXPORT:
        messages.error(request, gettext("Export at most %(MAX_STUDIES_PER_EXPORT)s studies at a time.") % {"MAX_STUDIES_PER_EXPORT": MAX_STUDIES_PER_EXPORT})
        return back(request)
    zipped = request.POST.get("zipped", "on") == "on"
    with_viewer = request.POST.get("viewer", "on") == "on"
    job = do_export_studies(studies, zipped, with_viewer, acting_user=request.user, request=request)
    return redirect("routing:job-detail", job.pk)
