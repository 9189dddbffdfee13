"""Study actions from the pages (POST only): mark read/unread (Mark Study), Private/Public of a
study or a patient and delete (Modify). Each checks its privilege, reaches its study or patient
through pacsone.access, and calls the `do_*` function that changes and journals it; then it
returns to where the user came from."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action

from ..access import access_patient, access_study
from ..actions import do_mark_study, do_set_patient_public, do_set_study_public
from ..deletion import do_delete_study
from ..study_search import TRUE_WORDS


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
    messages.success(request, f"Marked {'read' if read else 'unread'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def study_visibility(request, study_uid):
    study = access_study(request, study_uid, action=Action.MODIFY)
    public = _posted_flag(request, "public")
    do_set_study_public(study, public, acting_user=request.user, request=request)
    messages.success(request, f"The study is now {'public' if public else 'private'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def patient_visibility(request, patient_pk):
    patient = access_patient(request, patient_pk, action=Action.MODIFY)
    public = _posted_flag(request, "public")
    do_set_patient_public(patient, public, acting_user=request.user, request=request)
    messages.success(request, f"The patient and all their studies are now {'public' if public else 'private'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def delete(request, study_uid):
    study = access_study(request, study_uid, action=Action.DELETE)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm the deletion first.")
        return back(request)
    count = do_delete_study(study, acting_user=request.user, request=request)
    messages.success(request, f"Study deleted ({count} instance(s)).")
    return redirect("home")
