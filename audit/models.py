"""The system journal: append-only entries, each carrying a keyed MAC chained to the one before.

The ORM refuses to change or delete an entry; `manage.py verifyjournal` recomputes the chain
with the key kept outside the database (audit/chain.py) and reports the first broken link, so
an entry edited or removed in the database by hand is detected, even when its editor
recomputed a plain hash chain.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models

from . import chain


class Action(models.TextChoices):
    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOCKED_OUT = "locked_out", "Locked out"
    PASSWORD_CHANGE = "password_change", "Password change"
    VIEW = "view", "View"
    SEARCH = "search", "Search"
    QUERY = "query", "Query"
    RETRIEVE = "retrieve", "Retrieve"
    MOVE = "move", "Move"
    STORE = "store", "Store"
    DOWNLOAD = "download", "Download"
    EXPORT = "export", "Export"
    IMPORT = "import", "Import"
    UPLOAD = "upload", "Upload"
    MODIFY = "modify", "Modify"
    DELETE = "delete", "Delete"
    FORWARD = "forward", "Forward"
    PRINT = "print", "Print"
    MARK = "mark", "Mark study"
    CHANGE_STORAGE = "change_storage", "Change storage"
    PURGE = "purge", "Purge"
    ASSOCIATION = "association", "DICOM association"
    CONFIGURATION = "configuration", "Configuration change"
    USER_ADMIN = "user_admin", "User administration"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a journal entry."""


class EntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("journal entries cannot be changed")

    def delete(self):
        raise AppendOnlyError("journal entries cannot be deleted")

    _raw_delete = delete


class Entry(models.Model):
    """Who, when, from where, what, which patient/study/object, and the outcome."""

    timestamp = models.DateTimeField(db_index=True)
    username = models.CharField(max_length=150, blank=True, default="", db_index=True)
    address = models.CharField(max_length=64, blank=True, default="")
    ae_title = models.CharField(max_length=16, blank=True, default="")
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    patient_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    study_uid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    target = models.CharField(max_length=255, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.TextField(blank=True, default="")
    # The previous entry's MAC, and this entry's HMAC-SHA256 (the column names are from the
    # SHA-256 chain it replaced).
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = EntryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "journal entries"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("journal entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("journal entries cannot be deleted")

    def compute_hash(self, key: bytes | None = None) -> str:
        """HMAC-SHA256 over the previous MAC and every recorded field, in a fixed order."""
        return chain.mac(chain.entry_fields(self), key)


class JournalHead(models.Model):
    """One row holding the newest entry's MAC. Appending locks it, so that concurrent
    processes chain one after the other; with the head exported off the database it reveals
    removal of the newest entries."""

    last_entry_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    count = models.BigIntegerField(default=0)


def validate_addresses(value: str) -> None:
    """One or more e-mail addresses separated by commas."""
    for address in (part.strip() for part in value.split(",")):
        if address:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(f"{address} is not an e-mail address.") from None


class MailServer(models.Model):
    """The one e-mail server (one row): used by every mail the server sends (pacsone/mail.py),
    the monthly journal report and the statistics reports alike. Set on the e-mail settings
    page or with `manage.py mailserver set`; changed only through pacsone.mail.do_set_mail_server."""

    class Security(models.TextChoices):
        NONE = "none", "None (plain SMTP)"
        STARTTLS = "starttls", "STARTTLS"
        TLS = "tls", "TLS from the start (SMTPS)"

    host = models.CharField(max_length=255, blank=True, default="",
                            help_text="SMTP server; leave empty to send no e-mail.")
    port = models.PositiveIntegerField(default=25, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.NONE)
    username = models.CharField(max_length=255, blank=True, default="")
    # Kept to log in to the SMTP server; never shown back (forms, journal, commands).
    password = models.CharField(max_length=255, blank=True, default="")
    sender = models.EmailField(default="pacsone@localhost")
    administrators = models.CharField(
        max_length=1000, blank=True, default="", validators=[validate_addresses],
        help_text="Who receives the reports: one or more addresses, separated by commas.")
    daily_report = models.BooleanField(default=True, help_text="Mail yesterday's statistics every day.")
    weekly_report = models.BooleanField(default=True, help_text="Mail last week's statistics every Monday.")
    monthly_report = models.BooleanField(default=True, help_text="Mail last month's statistics on the 1st.")

    @classmethod
    def current(cls) -> "MailServer":
        server, _ = cls.objects.get_or_create(pk=1)
        return server

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.administrators.split(",") if address.strip()]

    @property
    def configured(self) -> bool:
        return bool(self.host and self.recipients)
