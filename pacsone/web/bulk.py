"""Actions on the studies selected in the study list, each with its own privilege: download
as one ZIP (Download), export (Export), forward (Forward), mark read/unread (Mark Study), make public/private and delete to
the trash (Modify). Every study is reached through pacsone.access (one hidden or missing is
refused, journaled, and nothing is done), then the same `do_*` function as for one study runs
for each. Delete shows a confirmation page naming the studies first."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from ..access import journal_denial, studies_for
from ..actions import do_mark_study, do_set_study_public
from ..deletion import do_trash_study
from ..download import studies_zip_chunks
from ..forward import do_forward_study
from ..humanize import count
from ..models import RemoteAE
from .actions import back, deletion_summary
from .export import export_studies
from ..stats import forget_archive_stats

MAX_STUDIES = 500
# action -> (privilege, journal action)
ACTIONS = {
    "download": (Privilege.DOWNLOAD, Action.DOWNLOAD),
    "export": (Privilege.EXPORT, Action.EXPORT),
    "forward": (Privilege.FORWARD, Action.FORWARD),
    "read": (Privilege.MARK_STUDY, Action.MARK),
    "unread": (Privilege.MARK_STUDY, Action.MARK),
    "public": (Privilege.MODIFY, Action.MODIFY),
    "private": (Privilege.MODIFY, Action.MODIFY),
    "delete": (Privilege.MODIFY, Action.DELETE),
}


def _selected(request, action: str):
    """The selected studies, all of them visible to the user, or None (refused and journaled)."""
    uids = list(dict.fromkeys(request.POST.getlist("study")))
    if not uids:
        messages.error(request, gettext("Select one or more studies first."))
        return None
    if len(uids) > MAX_STUDIES:
        messages.error(request, gettext("Select at most %(MAX_STUDIES)s studies at a time.") % {"MAX_STUDIES": MAX_STUDIES})
        return None
    studies = list(studies_for(request.user).filter(study_instance_uid__in=uids).order_by("pk"))
    if len(studies) != len(uids):
        journal_denial(request, action, "selected studies",
                       f"{len(uids) - len(studies)} of {len(uids)} selected studies do not exist or are not "
                       "visible to this user")
        messages.error(request, gettext("Some selected studies are no longer there or not visible to you: nothing was done."))
        return None
    return studies


@require_POST
@login_required
def bulk_action(request):
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        messages.error(request, gettext("Choose what to do with the selected studies."))
        return back(request)
    privilege, journal_action = ACTIONS[action]
    if not has_privilege(request.user, privilege):
        raise PermissionDenied(f"needs the {Privilege(privilege).label} privilege")
    if action == "export":
        return export_studies(request)
    studies = _selected(request, journal_action)
    if studies is None:
        return back(request)
    done = count(len(studies), "study", "studies")
    if action == "download":
        for study in studies:
            record(Action.DOWNLOAD, request=request, patient_id=study.patient.patient_id,
                   study_uid=study.study_instance_uid, target="selected studies ZIP")
        response = StreamingHttpResponse(studies_zip_chunks(studies), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="studies-{len(studies)}.zip"'
        return response
    if action == "forward":
        ae = request.POST.get("ae", "")
        remote = RemoteAE.objects.filter(pk=int(ae)).first() if ae.isdigit() else None
        if remote is None:
            messages.error(request, gettext("Choose a registered remote AE to forward to."))
            return back(request)
        for study in studies:
            do_forward_study(study, remote, acting_user=request.user, request=request)
        messages.success(request, gettext("Forward of %(done)s to %(ae_title)s queued: see Jobs.") % {"done": done, "ae_title": remote.ae_title})
    elif action in ("read", "unread"):
        for study in studies:
            do_mark_study(study, action == "read", acting_user=request.user, request=request)
        messages.success(request, gettext("Marked %(done)s %(action)s.") % {"done": done, "action": action})
    elif action in ("public", "private"):
        for study in studies:
            do_set_study_public(study, action == "public", acting_user=request.user, request=request)
        messages.success(request, f"{done[0].upper()}{done[1:]} now {action}.")
    elif action == "delete":
        return _delete(request, studies)
    return back(request)


def _safe_next(request) -> str:
    target = request.POST.get("next", "")
    return target if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else "/"


def _delete(request, studies):
    """The confirmation page naming every study; deleted only when its own field comes back
    listing exactly the same studies."""
    uids = sorted(study.study_instance_uid for study in studies)
    if request.POST.get("confirm_studies") == " ".join(uids):
        for study in studies:
            do_trash_study(study, acting_user=request.user, request=request)
        forget_archive_stats()
        messages.success(request, f"Deleted {count(len(studies), 'study', 'studies')}: in the trash for "
                                  f"{settings.PACS_TRASH_DAYS} days, from which System Administration can "
                                  "restore them.")
        return back(request)
    images = sum(study.number_of_instances for study in studies)
    return render(request, "pacsone/confirm_bulk_delete.html", {
        "studies": studies, "summaries": [deletion_summary(study) for study in studies],
        "confirm_value": " ".join(uids), "trash_days": settings.PACS_TRASH_DAYS,
        "title": f"Delete {count(len(studies), 'study', 'studies')} ({count(images, 'image', 'images')})",
        "next": _safe_next(request),
    })
