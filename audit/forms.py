from django import forms

from .models import MailServer


class MailServerForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput(render_value=True), required=False)

    class Meta:
        model = MailServer
        fields = ["host", "port", "use_tls", "username", "password", "sender", "recipient"]
