"""Study actions from the pages (POST only): mark read/unread (Mark Study), Private/Public of a
study or a patient and delete (Modify). Each checks its privilege and the visibility rule, is
journaled, and returns to where the user came from."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from ..deletion import delete_study
from ..models import Patient, Study
from ..study_search import TRUE_WORDS
from ..visibility import set_patient_public, set_study_public, visible_study_or_404



def back(request, default="home"):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _posted_flag(request, name: str) -> bool:
    """A yes/no field of the form; absent means yes (the buttons post the new value)."""
    return request.POST.get(name, "1").lower() in TRUE_WORDS


def _subject(study: Study) -> dict:
    return {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}


@require_POST
@privilege_required(Privilege.MARK_STUDY)
def mark_study(request, study_uid):
    study = visible_study_or_404(request, study_uid)
    study.read = _posted_flag(request, "read")
    study.save(update_fields=["read", "updated_at"])
    record(Action.MARK, request=request, detail=f"read={study.read}", **_subject(study))
    messages.success(request, f"Marked {'read' if study.read else 'unread'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def study_visibility(request, study_uid):
    study = visible_study_or_404(request, study_uid)
    public = _posted_flag(request, "public")
    set_study_public(study, public)
    record(Action.MODIFY, request=request, detail=f"public={public}", **_subject(study))
    messages.success(request, f"The study is now {'public' if public else 'private'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def patient_visibility(request, patient_pk):
    patient = get_object_or_404(Patient.objects.visible_to(request.user), pk=patient_pk)
    public = _posted_flag(request, "public")
    set_patient_public(patient, public)
    record(Action.MODIFY, request=request, patient_id=patient.patient_id, target=f"patient {patient.pk}",
           detail=f"public={public} (all its studies too)")
    messages.success(request, f"The patient and all their studies are now {'public' if public else 'private'}.")
    return back(request)


@require_POST
@privilege_required(Privilege.MODIFY)
def delete(request, study_uid):
    study = visible_study_or_404(request, study_uid)
    subject = _subject(study)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Confirm the deletion first.")
        return back(request)
    count = delete_study(study)
    record(Action.DELETE, request=request, target="study", detail=f"{count} instance(s)", **subject)
    messages.success(request, f"Study deleted ({count} instance(s)).")
    return redirect("home")
