"""The edit page of a study's patient and study attributes (Modify); the change runs as a job.

Saving asks first (issue 17, safe actions): the page states what will change, from what to what,
and how many studies and images of whom are rewritten; only the confirming second POST (with
`confirmed`) starts the job. Nothing runs from one stray click or without scripts."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from .. import humanize
from ..access import access_study
from ..editing import PATIENT_ATTRIBUTES, changed_attributes, do_edit_study


class StudyEditForm(forms.Form):
    patient_name = forms.CharField(max_length=324, required=False, help_text="DICOM form: Last^First, e.g. DOE^JOHN")
    birth_date = forms.DateField(required=False, help_text="YYYY-MM-DD", widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=[("", "unknown"), ("F", "F"), ("M", "M"), ("O", "O")], required=False)
    study_description = forms.CharField(max_length=64, required=False)
    accession_number = forms.CharField(max_length=16, required=False)
    referring_physician_name = forms.CharField(max_length=324, required=False, label="Referring physician",
                                               help_text="Last^First: a physician of that name sees the private study")
    reading_physician_name = forms.CharField(max_length=324, required=False, label="Reading physician")
    study_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, str) and any(c in value for c in "\\\r\n\0"):
                self.add_error(name, "Backslashes and line breaks are not allowed here.")
        return cleaned


def _shown(field: str, value) -> str:
    if value in (None, ""):
        return "(empty)"
    if field.endswith("_name"):
        return humanize.person_name(value)
    if field.endswith("_date"):
        return humanize.date(value)
    if field == "sex":
        return humanize.sex(value)
    return str(value)


def edit_plan(form: StudyEditForm, study) -> dict | None:
    """What saving will do, in words: each change (old and new value, as people read them) and
    the studies and images rewritten. None when nothing differs."""
    patient_changes, study_changes = changed_attributes(study.patient, study, form.cleaned_data)
    if not patient_changes and not study_changes:
        return None
    owner = study.patient if patient_changes else study
    changes = [{"label": form.fields[field].label or field.replace("_", " ").capitalize(),
                "old": _shown(field, getattr(study.patient if field in PATIENT_ATTRIBUTES else study, field)),
                "new": _shown(field, value)}
               for field, value in {**patient_changes, **study_changes}.items()]
    studies = list(study.patient.studies.all()) if patient_changes else [study]
    images = sum(each.number_of_instances for each in studies)
    return {"changes": changes, "studies": humanize.count(len(studies), "study", "studies"),
            "images": humanize.count(images, "image", "images"), "every_study": owner is study.patient,
            "patient": humanize.person_name(study.patient.patient_name) or study.patient.patient_id}


@privilege_required(Privilege.MODIFY)
def edit_study(request, study_uid):
    study = access_study(request, study_uid, action=Action.MODIFY)
    patient = study.patient
    initial = {"patient_name": patient.patient_name, "birth_date": patient.birth_date, "sex": patient.sex,
               "study_description": study.study_description, "accession_number": study.accession_number,
               "referring_physician_name": study.referring_physician_name,
               "reading_physician_name": study.reading_physician_name, "study_date": study.study_date}
    form = StudyEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        plan = edit_plan(form, study)
        if plan is None:
            messages.info(request, gettext("Nothing was changed."))
            return render(request, "pacsone/edit_study.html", {"form": form, "study": study})
        if request.POST.get("confirmed") != "yes" or "back" in request.POST:
            # First the page says what will happen; the job starts only from its confirm button.
            return render(request, "pacsone/edit_study.html",
                          {"form": form, "study": study, "plan": None if "back" in request.POST else plan})
        job = do_edit_study(study, form.cleaned_data, acting_user=request.user, request=request)
        if job is None:
            messages.info(request, gettext("Nothing was changed."))
            return render(request, "pacsone/edit_study.html", {"form": form, "study": study})
        return redirect("routing:job-detail", job.pk)
    record(Action.VIEW, request=request, target="edit form", patient_id=patient.patient_id,
           study_uid=study.study_instance_uid)
    return render(request, "pacsone/edit_study.html", {"form": form, "study": study})
