"""Forms of the Query/Retrieve pages; the remote AE form is also the `aes` command's check."""

from django import forms

from ..models import RemoteAE, RemoteSync

AE_TITLE_HELP = "1 to 16 characters, no backslash or control characters"


def clean_ae_title(value: str) -> str:
    """An AE title as PS3.5 allows it (VR AE): 1-16 characters, not only spaces, no backslash
    or control characters; leading and trailing spaces are not significant."""
    title = (value or "").strip()
    if not title or len(title) > 16:
        raise forms.ValidationError(f"An AE title has {AE_TITLE_HELP}.")
    if "\\" in title or any(ord(c) < 32 or ord(c) > 126 for c in title):
        raise forms.ValidationError(f"An AE title has {AE_TITLE_HELP}.")
    return title


class RemoteAEForm(forms.ModelForm):
    class Meta:
        model = RemoteAE
        fields = ["ae_title", "host", "port", "description", "may_store", "may_query", "is_move_destination",
                  "is_queryable"]
        help_texts = {"ae_title": AE_TITLE_HELP}

    def clean_ae_title(self):
        return clean_ae_title(self.cleaned_data.get("ae_title"))

    def clean_host(self):
        host = (self.cleaned_data.get("host") or "").strip()
        if not host or any(c.isspace() for c in host):
            raise forms.ValidationError("Give a host name or an IP address.")
        return host

    def clean_port(self):
        port = self.cleaned_data.get("port")
        if port is None or not 1 <= port <= 65535:
            raise forms.ValidationError("A port is a number from 1 to 65535.")
        return port


DATE_RANGE = r"^(\d{8})?(-(\d{8})?)?$"
TIME_RANGE = r"^(\d{2,6}(\.\d{1,6})?)?(-(\d{2,6}(\.\d{1,6})?)?)?$"
TEXT_KEY = r"^[^\\\x00-\x1f]*$"  # wildcards welcome; no backslash (a DICOM value separator)


class RemoteSearchForm(forms.Form):
    """The fields of seed 004's "Search Remote SCP" page; `*` and `?` as wildcards."""

    remote = forms.ModelChoiceField(queryset=RemoteAE.objects.filter(is_queryable=True).order_by("ae_title"),
                                    label="Remote AE", empty_label=None)
    patient_id = forms.RegexField(TEXT_KEY, required=False, max_length=64, label="Patient ID")
    patient_name = forms.RegexField(TEXT_KEY, required=False, max_length=64, label="Patient name")
    study_id = forms.RegexField(TEXT_KEY, required=False, max_length=16, label="Study ID")
    study_date = forms.RegexField(DATE_RANGE, required=False, max_length=17, label="Study date",
                                  help_text="YYYYMMDD or a range: A-B, -B, A-")
    study_time = forms.RegexField(TIME_RANGE, required=False, max_length=27, label="Study time",
                                  help_text="HHMMSS or a range")
    accession_number = forms.RegexField(TEXT_KEY, required=False, max_length=16, label="Accession")
    series_date = forms.RegexField(DATE_RANGE, required=False, max_length=17, label="Series date")
    series_time = forms.RegexField(TIME_RANGE, required=False, max_length=27, label="Series time")
    modality = forms.RegexField(r"^[A-Za-z*?]*$", required=False, max_length=16, label="Modality")

    def clean(self):
        cleaned = super().clean()
        for name in ("study_date", "series_date", "study_time", "series_time"):
            if cleaned.get(name) == "-":
                self.add_error(name, "A range needs at least one end.")
        if cleaned.get("modality"):
            cleaned["modality"] = cleaned["modality"].upper()
        return cleaned


class RemoteSyncForm(forms.ModelForm):
    hour_choices = forms.TypedMultipleChoiceField(
        choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, required=False, label="Hours",
        widget=forms.CheckboxSelectMultiple, help_text="Up to 24 hourly runs a day")

    class Meta:
        model = RemoteSync
        fields = ["enabled", "days"]
        labels = {"days": "Only studies of the last N days"}
        help_texts = {"days": "Leave empty to synchronize all studies"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hour_choices"].initial = self.instance.hour_list() if self.instance.pk else []

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("enabled") and not cleaned.get("hour_choices"):
            self.add_error("hour_choices", "Choose at least one hour to synchronize at.")
        if cleaned.get("days") == 0:
            self.add_error("days", "Give at least 1 day, or leave it empty for all studies.")
        return cleaned

    def save(self, commit=True):
        self.instance.hours = ",".join(str(h) for h in sorted(set(self.cleaned_data.get("hour_choices") or [])))
        return super().save(commit)
