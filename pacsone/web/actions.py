"""Study actions from the pages (POST only, but for delete's confirmation page): mark read/unread
(Mark Study), Private/Public of a study or a patient and delete to the trash (Modify). Each checks its privilege, reaches its study or patient
through pacsone.access, and calls the `do_*` function that changes and journals it; then it
returns to where the user came from."""

from django.contrib import messages
from django.conf import settings
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action

from ..access import access_patient, access_study
from ..actions import do_mark_study, do_set_patient_public, do_set_study_public
from ..deletion import do_trash_study
from ..humanize import count, person_name
from ..study_search import TRUE_WORDS
from ..stats import forget_archive_stats


def back(request, default="home"):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _posted_flag(request, name: str) -> bool:
    """A yes/no field of the form; absent means yes (the buttons post the new value)."""
    return request.POST.get(name, "1").lower() in TRUE_WORDS


@require_POST
@privilege_required(Privilege.MARK_STUDY)
def mark_study(request, study_uid):
    study = access_study(request, study_uid, action=Action.MARK)
    read = _posted_flag(request, "read")
    do_mark_study(study, read, acting_user=request.user, request=request)
    messages.success(request, gettext("Marked %(read_if_read_else_unread)s.") % {"read_if_read_else_unread": 'read' if read else 'unread'})
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def study_visibility(request, study_uid):
    study = access_study(request, study_uid, action=Action.MODIFY)
    public = _posted_flag(request, "public")
    do_set_study_public(study, public, acting_user=request.user, request=request)
    messages.success(request, gettext("The study is now %(public_if_public_else_private)s.") % {"public_if_public_else_private": 'public' if public else 'private'})
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def patient_visibility(request, patient_pk):
    patient = access_patient(request, patient_pk, action=Action.MODIFY)
    public = _posted_flag(request, "public")
    do_set_patient_public(patient, public, acting_user=request.user, request=request)
    messages.success(request, gettext("The patient and all their studies are now %(public_if_public_else_private)s.") % {"public_if_public_else_private": 'public' if public else 'private'})
    return back(request)


def deletion_summary(study) -> str:
    """What a delete does, in the words of the confirmation: `Delete study CT CHEST of DOE, John
    (2026-11-30): 101 images`."""
    from ..humanize import date

    described = study.study_description or "without description"
    when = f" ({date(study.study_date)})" if study.study_date else ""
    name = person_name(study.patient.patient_name) or study.patient.patient_id
    return (f"Delete study {described} of {name}{when}: "
            f"{count(study.number_of_instances, 'image', 'images')}")


@privilege_required(Privilege.MODIFY)
def delete(request, study_uid):
    """GET: the confirmation page, naming what will happen. POST: only with the confirmation's
    own field (the study's UID), so a stray click, a replayed form or a broken script that posts
    without it deletes nothing. The study goes to the trash, hidden from everyone."""
    study = access_study(request, study_uid, action=Action.DELETE)
    if request.method == "POST" and request.POST.get("confirm_study") == study.study_instance_uid:
        do_trash_study(study, acting_user=request.user, request=request)
        forget_archive_stats()
        messages.success(request, f"Done: {deletion_summary(study)[0].lower()}{deletion_summary(study)[1:]}. "
                                  f"The study stays in the trash for {settings.PACS_TRASH_DAYS} days; "
                                  f"System Administration can restore it from there.")
        return redirect("home")
    if request.method == "POST":
        messages.error(request, gettext("Nothing was deleted: confirm on this page first."))
    elif request.method != "GET":
        return redirect("study", study_uid=study.study_instance_uid)
    return render(request, "pacsone/confirm_delete_study.html", {
        "study": study, "summary": deletion_summary(study), "trash_days": settings.PACS_TRASH_DAYS,
    })
