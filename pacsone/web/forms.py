"""Forms of the Query/Retrieve and print pages; the remote AE and printer forms are also the `aes`
and `printers` commands' checks."""

import re

from django import forms

from accounts.models import User, UserGroup

from ..dicom.policy import parse_network
from ..models import Printer, RemoteAE, RemoteSync, Scope, validate_display_format

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


HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")


class UserChoice(forms.ModelChoiceField):
    def label_from_instance(self, user):
        name = user.get_full_name()
        return f"{user.username} ({name})" if name else user.username


class RemoteAEForm(forms.ModelForm):
    """A remote AE. Its scope sets what its C-FIND, C-MOVE and C-GET see: the whole archive, or
    what one user or one group may see."""

    user = UserChoice(queryset=User.objects.order_by("username"), required=False, label="User",
                      help_text="For 'what a user may see': e.g. a physician's workstation.")
    group = forms.ModelChoiceField(queryset=UserGroup.objects.order_by("name"), required=False, label="Group",
                                   help_text="For 'what a group may see': public studies and those whose "
                                             "Institution Name is the group's description.")

    class Meta:
        model = RemoteAE
        fields = ["ae_title", "host", "port", "description", "may_store", "may_query", "is_move_destination",
                  "is_queryable", "requests_storage_commitment", "networks", "scope", "user", "group"]
        help_texts = {"ae_title": AE_TITLE_HELP}
        labels = {"scope": "Its queries and retrieves see", "ae_title": "AE title", "may_store": "May send to us",
                  "may_query": "May query and retrieve from us", "is_move_destination": "Receives C-MOVE results",
                  "is_queryable": "We may query it", "requests_storage_commitment": "Request storage commitment"}
        widgets = {"scope": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].required = False  # not given: an existing AE keeps its scope, a new one "all"

    def clean_ae_title(self):
        return clean_ae_title(self.cleaned_data.get("ae_title"))

    def clean_networks(self):
        items = [item.strip() for item in (self.cleaned_data.get("networks") or "").split(",") if item.strip()]
        for item in items:
            if parse_network(item) is None and not HOST_NAME.match(item):
                raise forms.ValidationError(f"{item!r} is not an IP address, a network (e.g. 10.1.0.0/16) or a host name.")
        return ", ".join(items)

    def clean(self):
        cleaned = super().clean()
        scope = cleaned["scope"] = cleaned.get("scope") or (self.instance.scope if self.instance.pk else Scope.ALL)
        if scope == Scope.USER and not cleaned.get("user"):
            self.add_error("user", "Choose the user whose studies it sees.")
        if scope == Scope.GROUP and not cleaned.get("group"):
            self.add_error("group", "Choose the group whose studies it sees.")
        if scope != Scope.USER:
            cleaned["user"] = None
        if scope != Scope.GROUP:
            cleaned["group"] = None
        return cleaned

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


class PrinterForm(forms.ModelForm):
    """A DICOM printer and the film it prints by default."""

    class Meta:
        model = Printer
        fields = ["ae_title", "host", "port", "description", "color", "film_size_id", "orientation", "display_format",
                  "magnification_type", "medium_type", "film_destination", "copies", "enabled"]
        help_texts = {"ae_title": AE_TITLE_HELP}
        labels = {"ae_title": "AE title", "color": "Colour printer", "film_size_id": "Film size",
                  "display_format": "Layout (image display format)", "copies": "Number of copies"}

    def clean_ae_title(self):
        return clean_ae_title(self.cleaned_data.get("ae_title"))

    def clean_host(self):
        host = (self.cleaned_data.get("host") or "").strip()
        if parse_network(host) is None and not HOST_NAME.match(host):
            raise forms.ValidationError(f"{host!r} is not an IP address or a host name.")
        return host

    def clean_display_format(self):
        return (self.cleaned_data.get("display_format") or "").strip().upper()


class PrintForm(forms.Form):
    """What one print asks for; layout and copies blank: the printer's own."""

    printer = forms.ModelChoiceField(queryset=Printer.objects.none(), empty_label=None)
    layout = forms.CharField(required=False, max_length=20, validators=[validate_display_format],
                             help_text="STANDARD\\columns,rows; blank: the printer's layout",
                             widget=forms.TextInput(attrs={"placeholder": "STANDARD\\2,2"}))
    copies = forms.IntegerField(required=False, min_value=1, max_value=99, help_text="Blank: the printer's number")

    def __init__(self, *args, printers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["printer"].queryset = printers

    def clean_layout(self):
        return (self.cleaned_data.get("layout") or "").strip().upper()
