"""The edit page of a study's patient and study attributes (Modify); the change runs as a job."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from ..access import access_study
from ..editing import do_edit_study


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
        job = do_edit_study(study, form.cleaned_data, acting_user=request.user, request=request)
        if job is None:
            messages.info(request, "Nothing was changed.")
            return render(request, "pacsone/edit_study.html", {"form": form, "study": study})
        return redirect("routing:job-detail", job.pk)
    record(Action.VIEW, request=request, target="edit form", patient_id=patient.patient_id,
           study_uid=study.study_instance_uid)
    return render(request, "pacsone/edit_study.html", {"form": form, "study": study})
