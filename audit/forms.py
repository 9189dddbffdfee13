from django import forms

from .models import MailServer


class MailServerForm(forms.ModelForm):
    """The e-mail settings. The stored password is never put back into the page: an empty
    field keeps it, `forget_password` removes it."""

    password = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False,
                               help_text="Leave empty to keep the stored password.")
    forget_password = forms.BooleanField(required=False, label="Remove the stored password")

    class Meta:
        model = MailServer
        fields = ["host", "port", "security", "username", "password", "sender", "administrators",
                  "daily_report", "weekly_report", "monthly_report"]

    def clean_administrators(self):
        return ", ".join(a.strip() for a in self.cleaned_data["administrators"].split(",") if a.strip())

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("host") and not cleaned.get("administrators"):
            self.add_error("administrators", "Give at least one address to send the reports to.")
        return cleaned

    def changed_values(self) -> dict:
        values = {field: self.cleaned_data[field] for field in self.Meta.fields}
        if self.cleaned_data.get("forget_password"):
            values["password"] = ""
        return values
