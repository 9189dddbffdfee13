"""Users and groups. A custom user model from the first migration: privileges, password
expiry and the physician-name match live on it."""

from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.utils import timezone

from .privileges import ALL_PRIVILEGES, Privilege, privileges_of

ROOT_USERNAME = "root"


def validate_privilege_list(value) -> None:
    from django.core.exceptions import ValidationError

    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("privileges must be a list of names")
    unknown = sorted(set(value) - ALL_PRIVILEGES)
    if unknown:
        raise ValidationError(f"unknown privileges: {', '.join(unknown)}")


class UserManager(DjangoUserManager):
    def _create_user(self, username, email, password, **extra_fields):
        # Django sets the password without set_password(): start the expiry clock here.
        extra_fields.setdefault("password_changed_at", timezone.now())
        return super()._create_user(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person who logs in. First and last name matter: they are matched against the
    Referring and Reading Physician names of private studies (DESIGN.md, visibility rules)."""

    privileges = models.JSONField(default=list, blank=True, validators=[validate_privilege_list])
    # When the password was last set; None forces a change at the next login.
    password_changed_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    @property
    def is_root(self) -> bool:
        return self.username == ROOT_USERNAME

    @property
    def category(self) -> str:
        """The user categories of seed 004."""
        if self.is_root:
            return "Administrator"
        held = privileges_of(self)
        if Privilege.SYSTEM_ADMIN in held:
            return "System Administrator"
        if {Privilege.VIEW, Privilege.MODIFY} <= held:
            return "Power User"
        return "Regular User"

    def set_password(self, raw_password):
        super().set_password(raw_password)
        self.password_changed_at = timezone.now()
        self._revoke_api_tokens = True  # on save (accounts.signals): a new password kills old tokens

    def check_password(self, raw_password):
        """Django's check, whose re-hash of the same password (a hasher upgrade) neither
        restarts the expiry clock nor revokes tokens."""

        def rehash(raw):
            AbstractUser.set_password(self, raw)
            self.save(update_fields=["password"])

        return check_password(raw_password, self.password, rehash)


class UserGroup(models.Model):
    """A group of users with privileges of its own. Its description is matched against the
    Institution Name of private studies (seed 004): members see that institution's studies."""

    name = models.CharField(max_length=80, unique=True)
    description = models.CharField(max_length=128, blank=True, default="")
    privileges = models.JSONField(default=list, blank=True, validators=[validate_privilege_list])
    members = models.ManyToManyField(User, blank=True, related_name="pacs_groups")

    class Meta:
        verbose_name = "group"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A named API token (`Authorization: Token <key>`); a user may hold several. Only the
    SHA-256 of the key is stored: the key is shown once, when it is made (accounts.tokens)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # the key's first characters, to tell tokens apart
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="one_token_name_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"
