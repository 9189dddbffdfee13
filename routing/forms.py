"""The routing rule form (System Administration); routing.rules checks what the form cannot."""

from django import forms

from pacsone.models import RemoteAE

from .matching import RuleError
from .models import RoutingRule
from .rules import check_rule


class RoutingRuleForm(forms.ModelForm):
    match_by = forms.ChoiceField(choices=[("ae", "the sender's AE title"), ("attribute", "an attribute")],
                                 widget=forms.RadioSelect, initial="attribute", label="Match on")
    destinations = forms.ModelMultipleChoiceField(queryset=RemoteAE.objects.order_by("ae_title"),
                                                  widget=forms.CheckboxSelectMultiple, label="Send to")

    class Meta:
        model = RoutingRule
        fields = ["name", "enabled", "priority", "match_by", "source_ae_pattern", "match_keyword", "match_pattern",
                  "destinations", "schedule", "window_from", "window_to", "daily_at", "each_instance", "auto_purge",
                  "max_attempts"]
        labels = {"source_ae_pattern": "Source AE title", "match_keyword": "Attribute keyword",
                  "match_pattern": "Pattern", "each_instance": "Send each instance at once",
                  "auto_purge": "Delete the study once every destination confirmed every instance",
                  "max_attempts": "Attempts per destination", "window_from": "Window from",
                  "window_to": "Window to", "daily_at": "Daily at"}
        help_texts = {
            "priority": "Rules are tried lowest number first.",
            "source_ae_pattern": "* any characters, ? one character, e.g. CT_*",
            "match_keyword": "A DICOM keyword: PatientID, ReferringPhysicianName, InstitutionName, ProtocolName, Modality, ...",
            "match_pattern": "* any characters, ? one character, e.g. TEST*",
            "window_to": "HH:MM; a window may cross midnight (22:00 to 06:00).",
            "each_instance": "Otherwise a study is sent once no instance arrived for the quiet time (PACS_ROUTING_QUIET_SECONDS).",
        }
        widgets = {"schedule": forms.RadioSelect, "window_from": forms.TimeInput(format="%H:%M", attrs={"type": "time"}),
                   "window_to": forms.TimeInput(format="%H:%M", attrs={"type": "time"}),
                   "daily_at": forms.TimeInput(format="%H:%M", attrs={"type": "time"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["match_by"].initial = "ae" if self.instance.source_ae_pattern else "attribute"
        for name in ("source_ae_pattern", "match_keyword", "match_pattern"):
            self.fields[name].required = False

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("match_by") == "ae":
            cleaned["match_keyword"] = cleaned["match_pattern"] = ""
        else:
            cleaned["source_ae_pattern"] = ""
        rule = RoutingRule(**{name: cleaned.get(name) for name in (
            "name", "source_ae_pattern", "match_keyword", "match_pattern", "schedule", "window_from", "window_to",
            "daily_at") if cleaned.get(name) is not None})
        rule.max_attempts = cleaned.get("max_attempts") or 0
        if not self.errors:
            try:
                check_rule(rule, cleaned.get("destinations") or [])
            except RuleError as error:
                raise forms.ValidationError(str(error)) from None
        return cleaned
