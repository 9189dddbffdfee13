"""Forms of the Query/Retrieve pages; the remote AE form is also the `aes` command's check."""

from django import forms

from ..models import RemoteAE

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
