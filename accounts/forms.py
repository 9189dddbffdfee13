"""Forms of user administration and of the user's own password."""

from django import forms
from django.contrib.auth import password_validation

from .models import User, UserGroup
from .privileges import Privilege

PRIVILEGE_CHOICES = Privilege.choices


class PrivilegesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=PRIVILEGE_CHOICES, required=False, **kwargs)


class NewPasswordMixin(forms.Form):
    """Two password fields checked against Django's password validators."""

    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)
    must_change_password = forms.BooleanField(
        label="Must change the password at the next login", required=False, initial=True
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            user = getattr(self, "instance", None) or getattr(self, "user", None)
            try:
                password_validation.validate_password(first, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned

    def apply_password(self, user: User) -> None:
        user.set_password(self.cleaned_data["password1"])
        if self.cleaned_data.get("must_change_password"):
            user.password_changed_at = None


class UserForm(forms.ModelForm):
    privileges = PrivilegesField()
    pacs_groups = forms.ModelMultipleChoiceField(
        queryset=UserGroup.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, label="Groups"
    )

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email", "is_active", "privileges"]
        help_texts = {
            "first_name": "Matched with the last name against Referring/Reading Physician of private studies.",
            "is_active": "A disabled user cannot log in; the journal keeps their history.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["pacs_groups"].initial = self.instance.pacs_groups.all()

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            user.pacs_groups.set(self.cleaned_data["pacs_groups"])
        return user


class NewUserForm(NewPasswordMixin, UserForm):
    pass


class PasswordResetForm(NewPasswordMixin):
    def __init__(self, *args, user=None, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)


class GroupForm(forms.ModelForm):
    privileges = PrivilegesField()
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = UserGroup
        fields = ["name", "description", "privileges", "members"]
        help_texts = {
            "description": "Members see private studies whose Institution Name is this description.",
        }
