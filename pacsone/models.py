"""The archive's index: Patient -> Study -> Series -> Instance, Series -> Equipment.

Every attribute that queries match on has a database index. The full header of each instance
(without pixel data and other bulk data) is kept in `Instance.header` as DICOM JSON, so any
return key can be answered without re-reading the file.
"""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from .humanize import count


class StorageLocation(models.Model):
    """A folder that holds DICOM files. Paths inside it are relative and derived from hashes."""

    name = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=1024)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Purge watermarks (routing/purge.py), percentages of the filesystem's space in use: above
    # the high mark the oldest studies (by date received) go until usage is below the low mark.
    # No high mark: never purged.
    high_watermark = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Purge when more than this percentage of the disk is in use (blank: never purge).")
    low_watermark = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(99)],
        help_text="A purge stops once less than this percentage of the disk is in use.")

    def __str__(self) -> str:
        return f"{self.name} ({self.path})"


class RetentionRule(models.Model):
    """How long studies are kept before a purge may remove them (routing/retention.py): a rule
    without modality is the minimum age of every study; one with a modality keeps the studies
    that contain that modality at least that long."""

    modality = models.CharField(max_length=16, blank=True, default="", unique=True,
                                help_text="Blank: every study (the minimum age).")
    keep_days = models.PositiveIntegerField(help_text="Days after the study was received.")

    def __str__(self) -> str:
        return f"{self.modality or 'every study'}: {count(self.keep_days, 'day', 'days')}"


class StudyQuerySet(models.QuerySet):
    def visible_to(self, user) -> "StudyQuerySet":
        """The one visibility rule (pacsone.visibility)."""
        from .visibility import visible_studies

        return visible_studies(user, self)


class PatientQuerySet(models.QuerySet):
    def visible_to(self, user) -> "PatientQuerySet":
        from .visibility import visible_patients

        return visible_patients(user, self)


class Patient(models.Model):
    patient_id = models.CharField(max_length=64, db_index=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True, default="")
    patient_name = models.CharField(max_length=324, blank=True, default="", db_index=True)
    # Upper-case copy for case-insensitive matching with an index on every database.
    patient_name_search = models.CharField(max_length=324, blank=True, default="", db_index=True)
    birth_date = models.DateField(null=True, blank=True, db_index=True)
    sex = models.CharField(max_length=16, blank=True, default="")
    public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_id", "issuer_of_patient_id"], name="unique_patient_id_issuer"
            )
        ]

    def __str__(self) -> str:
        return f"Patient {self.patient_id}"


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="studies")
    study_date = models.DateField(null=True, blank=True, db_index=True)
    study_time = models.CharField(max_length=16, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    study_id = models.CharField(max_length=16, blank=True, default="", db_index=True)
    study_description = models.CharField(max_length=128, blank=True, default="")
    referring_physician_name = models.CharField(max_length=324, blank=True, default="", db_index=True)
    reading_physician_name = models.CharField(max_length=324, blank=True, default="", db_index=True)
    institution_name = models.CharField(max_length=128, blank=True, default="", db_index=True)
    public = models.BooleanField(default=False)
    read = models.BooleanField(default=False, db_index=True)
    source_ae = models.CharField(max_length=16, blank=True, default="", db_index=True)
    storage_location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.PROTECT, related_name="studies"
    )
    # Under legal hold: no purge removes it, whatever its age (routing/retention.py).
    legal_hold = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Kept exact by the ingest transaction (pacsone.study_counts), for C-FIND and study lists.
    modalities_in_study = models.CharField(max_length=64, blank=True, default="")
    number_of_series = models.PositiveIntegerField(default=0)
    number_of_instances = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    # Set while the study is in the trash (pacsone.deletion): hidden from everyone by the
    # visibility rule until restored or until the trash is emptied PACS_TRASH_DAYS later.
    trashed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    trashed_by = models.CharField(max_length=150, blank=True, default="")
    # Set when ingest queued the study's follow-up (routing, thumbnails, HL7), cleared when it ran:
    # a follow-up the task broker lost (a Redis restart) is queued again (pacsone/tasks.py).
    follow_up_due = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "studies"
        indexes = [
            models.Index(fields=["study_date", "study_time"], name="study_date_time"),
            models.Index(fields=["public"], name="study_public"),  # the visibility rule's OR
            # The statistics' timeline reads only this index (pacsone/stats.py).
            models.Index(fields=["received_at", "number_of_series", "number_of_instances", "size_bytes"],
                         name="study_received_stats"),
        ]

    def __str__(self) -> str:
        return f"Study {self.study_instance_uid}"


class Equipment(models.Model):
    """The device that made a series (as EasyPACS keeps it)."""

    manufacturer = models.CharField(max_length=64, blank=True, default="")
    manufacturer_model_name = models.CharField(max_length=64, blank=True, default="")
    station_name = models.CharField(max_length=16, blank=True, default="", db_index=True)
    device_serial_number = models.CharField(max_length=64, blank=True, default="")
    institution_name = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        verbose_name_plural = "equipment"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "manufacturer",
                    "manufacturer_model_name",
                    "station_name",
                    "device_serial_number",
                    "institution_name",
                ],
                name="unique_equipment",
            )
        ]

    def __str__(self) -> str:
        return " ".join(filter(None, [self.manufacturer, self.manufacturer_model_name, self.station_name]))


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=64, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    equipment = models.ForeignKey(
        Equipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="series"
    )
    modality = models.CharField(max_length=16, blank=True, default="", db_index=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=128, blank=True, default="")
    body_part_examined = models.CharField(max_length=16, blank=True, default="")
    series_date = models.DateField(null=True, blank=True, db_index=True)
    series_time = models.CharField(max_length=16, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    number_of_instances = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "series"
        indexes = [
            # The statistics' series per modality read only this index (pacsone/stats.py).
            models.Index(fields=["received_at", "modality", "number_of_instances"], name="series_received_stats"),
        ]

    def __str__(self) -> str:
        return f"Series {self.series_instance_uid}"


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64, db_index=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    storage_location = models.ForeignKey(
        StorageLocation, on_delete=models.PROTECT, related_name="instances"
    )
    # Relative to the storage location; derived from hashes only (invariant 5).
    file_path = models.CharField(max_length=255)
    file_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    header = models.JSONField(default=dict)
    source_ae = models.CharField(max_length=16, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"Instance {self.sop_instance_uid}"


class Scope(models.TextChoices):
    ALL = "all", "Whole archive"
    USER = "user", "What a user may see"
    GROUP = "group", "What a group may see"


class RemoteAE(models.Model):
    """A DICOM node we know: what it may do to us and what we may do with it."""

    ae_title = models.CharField(max_length=16, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    description = models.CharField(max_length=128, blank=True, default="")
    may_store = models.BooleanField(default=True, help_text="May send images to us (C-STORE)")
    may_query = models.BooleanField(default=True, help_text="May query and retrieve from us")
    is_move_destination = models.BooleanField(default=True, help_text="May receive C-MOVE results")
    is_queryable = models.BooleanField(default=False, help_text="We may query and retrieve from it")
    # After routing to it, ask it to commit what it received (Storage Commitment Push Model):
    # auto-purge then waits for its commitment (routing/commitment.py).
    requests_storage_commitment = models.BooleanField(
        default=False, verbose_name="request storage commitment",
        help_text="After routing to it, ask it to commit the instances (N-ACTION); auto-purge waits for its answer.")
    # Where its calls may come from (pacsone/dicom/policy.py): blank means its host above.
    networks = models.CharField(
        max_length=255, blank=True, default="", verbose_name="calls accepted from",
        help_text="Blank: from the host above. Otherwise IP addresses, host names or networks "
                  "(CIDR, e.g. 10.1.0.0/16), separated by commas.")
    # What its C-FIND/C-MOVE/C-GET see: the whole archive, or what one user or one group may see.
    # A linked user or group that is deleted leaves the scope in place and the AE sees nothing.
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.ALL)
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="dicom_aes", help_text="Its queries see what this user may see.")
    group = models.ForeignKey("accounts.UserGroup", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="dicom_aes", help_text="Its queries see what this group's members may see.")

    class Meta:
        verbose_name = "remote AE"

    def sees(self) -> str:
        """Its scope in words, for lists and the journal."""
        if self.scope == Scope.USER:
            return f"user {self.user.username}" if self.user else "nothing (its user was deleted)"
        if self.scope == Scope.GROUP:
            return f"group {self.group.name}" if self.group else "nothing (its group was deleted)"
        return "whole archive"

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


MAX_FILM_CELLS = 10  # columns or rows of a film layout: no printer offers more
DISPLAY_FORMAT = re.compile(r"^STANDARD\\(\d{1,2}),(\d{1,2})$")


def parse_display_format(text: str) -> tuple[int, int]:
    """(columns, rows) of an Image Display Format "STANDARD\\C,R" (PS3.3 C.13.8); ValueError
    with the reason otherwise."""
    match = DISPLAY_FORMAT.match((text or "").strip().upper())
    if not match:
        raise ValueError(f"'{text}' is not a layout of the form STANDARD\\columns,rows (e.g. STANDARD\\2,2)")
    columns, rows = int(match[1]), int(match[2])
    if not (1 <= columns <= MAX_FILM_CELLS and 1 <= rows <= MAX_FILM_CELLS):
        raise ValueError(f"a layout has 1 to {MAX_FILM_CELLS} columns and rows")
    return columns, rows


def validate_display_format(value: str) -> None:
    try:
        parse_display_format(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None


class Printer(models.Model):
    """A DICOM printer (Basic Grayscale or Basic Color Print Management SCP) and the film it is
    asked for by default (PS3.3 C.13.3, C.13.8: Film Session and Film Box attributes)."""

    class Orientation(models.TextChoices):
        PORTRAIT = "PORTRAIT", "Portrait"
        LANDSCAPE = "LANDSCAPE", "Landscape"

    FILM_SIZES = ["8INX10IN", "8_5INX11IN", "10INX12IN", "10INX14IN", "11INX14IN", "11INX17IN", "14INX14IN",
                  "14INX17IN", "24CMX24CM", "24CMX30CM", "A4", "A3"]
    MAGNIFICATIONS = ["REPLICATE", "BILINEAR", "CUBIC", "NONE"]
    MEDIA = ["PAPER", "CLEAR FILM", "BLUE FILM", "MAMMO CLEAR FILM", "MAMMO BLUE FILM"]
    DESTINATIONS = ["MAGAZINE", "PROCESSOR"] + [f"BIN_{n}" for n in range(1, 11)]

    ae_title = models.CharField(max_length=16, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    description = models.CharField(max_length=128, blank=True, default="")
    color = models.BooleanField(default=False, help_text="Prints colour (Basic Color Print Management); "
                                                         "otherwise grayscale")
    film_size_id = models.CharField(max_length=16, choices=[(s, s) for s in FILM_SIZES], default="14INX17IN")
    orientation = models.CharField(max_length=9, choices=Orientation.choices, default=Orientation.PORTRAIT)
    display_format = models.CharField(max_length=20, default="STANDARD\\2,2", validators=[validate_display_format],
                                      help_text="STANDARD\\columns,rows, e.g. STANDARD\\2,2 for four images a film")
    magnification_type = models.CharField(max_length=16, blank=True, default="",
                                          choices=[(m, m) for m in MAGNIFICATIONS],
                                          help_text="Blank: the printer's own default")
    medium_type = models.CharField(max_length=16, blank=True, default="", choices=[(m, m) for m in MEDIA],
                                   help_text="Blank: the printer's own default")
    film_destination = models.CharField(max_length=16, blank=True, default="",
                                        choices=[(d, d) for d in DESTINATIONS],
                                        help_text="Blank: the printer's own default")
    copies = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(99)])
    enabled = models.BooleanField(default=True)

    def layout(self) -> tuple[int, int]:
        return parse_display_format(self.display_format)

    def kind(self) -> str:
        return "colour" if self.color else "grayscale"

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class Note(models.Model):
    """A bulletin-board note on a study, or on one image of it (seed 004, study/image notes).
    Visible to those who may see the study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="notes")
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="notes")
    # Kept as written: the note keeps its author's name if the account is deleted.
    author_name = models.CharField(max_length=300)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note {self.pk} on {self.study_id}"


class Attachment(models.Model):
    """A file attached to a note. Stored under a name derived from its SHA-256 (invariant 5);
    the uploaded name is kept for display and for the download's file name only."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="attachments")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    file_path = models.CharField(max_length=255)  # relative to the data folder's attachments/

    def __str__(self) -> str:
        return self.original_name


class RemoteSync(models.Model):
    """Remote study synchronization (seed 004): at the chosen hours, pull from a queryable remote
    AE the studies we lack, of all time or of the last N days."""

    remote = models.OneToOneField(RemoteAE, on_delete=models.CASCADE, related_name="sync")
    enabled = models.BooleanField(default=False)
    # The hours of the day (0-23) it runs at, e.g. "2,14": up to 24 hourly schedules.
    hours = models.CharField(max_length=100, blank=True, default="")
    # Only studies of the last N days (by study date); empty: all studies.
    days = models.PositiveIntegerField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.TextField(blank=True, default="")

    def hour_list(self) -> list[int]:
        return sorted({int(h) for h in self.hours.split(",") if h.strip().isdigit() and int(h) < 24})

    def __str__(self) -> str:
        return f"Sync of {self.remote.ae_title}"


class Node(models.Model):
    """One server of the archive (`runpacs --node NAME`): its supervisor writes its processes
    here every PACS_NODE_HEARTBEAT_SECONDS, so every node's Monitor page shows them all."""

    name = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255, blank=True, default="")
    supervisor_pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    stopped = models.BooleanField(default=False)  # stopped politely (SIGTERM), not silent
    # [{name, pid, running, started, restarts, last_exit}], as the supervisor publishes them.
    processes = models.JSONField(default=list, blank=True)
    # A short hash of the keys every node must share (the Django secret key, the journal key):
    # a node started with other keys would log users out or fork the journal chain.
    keys_fingerprint = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScheduleRun(models.Model):
    """One row per scheduled run (schedule function, intended time): the unique pair makes a
    schedule run once however many nodes' task clusters pick it up (pacsone/schedules.py)."""

    func = models.CharField(max_length=200)
    intended = models.DateTimeField()
    node = models.CharField(max_length=64)
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["func", "intended"], name="one_run_per_schedule_time")]


class StatsDay(models.Model):
    """A past day of the statistics rollup (pacsone/stats_rollup.py): its figures are fresh when
    they were rolled up in this time zone after the day's studies last changed."""

    day = models.DateField(primary_key=True)
    time_zone = models.CharField(max_length=64, blank=True, default="")
    rolled_from = models.DateTimeField(null=True, blank=True)  # when that rollup began reading the index
    changed_at = models.DateTimeField(null=True, blank=True)  # the last change to the day's studies or series


class StatsFigure(models.Model):
    """One day's figures for one label of one breakdown: `hour` (the local hour received, whose
    rows add up to the day), `modality` (by series), `source_ae`, `institution`, `physician`."""

    day = models.DateField()
    dimension = models.CharField(max_length=16)
    label = models.CharField(max_length=324, blank=True, default="")
    studies = models.PositiveIntegerField(default=0)
    series = models.PositiveIntegerField(default=0)
    instances = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "dimension", "label"], name="one_figure_per_day_label")]
        # A period's sums read only this index (no row lookups: MariaDB's were most of the time).
        indexes = [models.Index(fields=["day", "dimension", "label", "studies", "series", "instances", "bytes"],
                                name="stats_figure_sums")]
