"""Jobs, routing rules and deliveries (DESIGN.md: routing/ holds the job layer every queue uses,
the routing table, forward jobs and job status).

A job is a row first and a task second: its function and arguments are stored with it, so a
dispatcher can start it again after a crash. A worker owns a running job through a lease
(claimed_by, lease_until) taken with one conditional UPDATE; an expired lease gives it back.
"""

from django.conf import settings
from django.db import models


class Job(models.Model):
    class Kind(models.TextChoices):
        EXPORT = "export", "Export"
        EDIT = "edit", "Edit"
        IMPORT = "import", "Import"
        UPLOAD = "upload", "Upload"
        FORWARD = "forward", "Forward"
        RETRIEVE = "retrieve", "Retrieve"
        SYNC = "sync", "Synchronize"
        PURGE = "purge", "Purge"
        CHANGE_STORAGE = "change_storage", "Change storage"
        ROUTE = "route", "Routing"
        NOTIFY = "notify", "Notification"
        PRINT = "print", "Print"
        REPORT = "report", "Statistics report"
        COMMITMENT = "commitment", "Storage commitment"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        WAITING = "waiting", "Waiting for its window"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    UNFINISHED = (State.QUEUED, State.WAITING, State.RUNNING)
    FINISHED = (State.DONE, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    title = models.CharField(max_length=255)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, default="")
    # What the job made for its owner to download (e.g. an export ZIP), relative to the data folder.
    result_path = models.CharField(max_length=255, blank=True, default="")
    # The studies the job reads or changes: its message and result are shown only to its owner
    # and to those who may see every one of them (pacsone.access.job_contents_visible). A study
    # with an unfinished job is "pending" (routing.pending): purges leave it alone.
    studies = models.ManyToManyField("pacsone.Study", blank=True, related_name="jobs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # What runs: `function(progress, *arguments)` (a dotted path; arguments JSON-serializable).
    function = models.CharField(max_length=255, blank=True, default="")
    arguments = models.JSONField(default=list, blank=True)
    # Called with the job once it is done (e.g. auto-purge after routing); dotted path or "".
    after_done = models.CharField(max_length=255, blank=True, default="")
    # Retries: a transient failure puts the job back in the queue until max_attempts.
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True, default="")
    # The lease: who runs it and until when, unless renewed.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    # Routing: one unfinished job per (study, rule, destination); later instances join it.
    rule = models.ForeignKey("routing.RoutingRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    dedupe_key = models.CharField(max_length=200, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}: {self.title}"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in self.FINISHED

    @property
    def state_text(self) -> str:
        """The state as a person reads it: "sending 12/40", "queued (attempt 2 of 3 at 10:05)"."""
        from django.utils import timezone

        if self.state == self.State.RUNNING:
            verb = "sending" if self.kind in (self.Kind.ROUTE, self.Kind.FORWARD) else "running"
            return f"{verb} {self.done}/{self.total}" if self.total else verb
        if self.state in (self.State.QUEUED, self.State.WAITING) and self.next_attempt_at:
            when = timezone.localtime(self.next_attempt_at).strftime("%Y-%m-%d %H:%M")
            label = "queued" if self.state == self.State.QUEUED else "waiting for its window"
            if self.attempts:
                return f"{label} (attempt {self.attempts + 1} of {self.max_attempts} at {when})"
            return f"{label} (from {when})" if self.state == self.State.WAITING else label
        return self.get_state_display().lower()


class RoutingRule(models.Model):
    """Seed 004's routing table: what arrives (from an AE, or with an attribute matching a
    pattern) goes to one or more destination AEs, now, inside a window, or daily at a time."""

    class Schedule(models.TextChoices):
        IMMEDIATELY = "immediately", "Immediately"
        WINDOW = "window", "Inside a time window"
        DAILY = "daily", "Daily at a time"

    name = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    # Rules are tried in (priority, name) order; a lower number first.
    priority = models.IntegerField(default=100)
    # Match: the calling AE title of the sender, or a DICOM keyword's value, against `*`/`?`.
    source_ae_pattern = models.CharField(max_length=64, blank=True, default="")
    match_keyword = models.CharField(max_length=64, blank=True, default="")
    match_pattern = models.CharField(max_length=128, blank=True, default="")
    destinations = models.ManyToManyField("pacsone.RemoteAE", related_name="routing_rules")
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.IMMEDIATELY)
    window_from = models.TimeField(null=True, blank=True)
    window_to = models.TimeField(null=True, blank=True)
    daily_at = models.TimeField(null=True, blank=True)
    # Send each batch of instances as it arrives instead of waiting for the study to be quiet.
    each_instance = models.BooleanField(default=False)
    auto_purge = models.BooleanField(default=False)
    max_attempts = models.PositiveIntegerField(default=3)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    def match_text(self) -> str:
        if self.source_ae_pattern:
            return f"source AE = {self.source_ae_pattern}"
        return f"{self.match_keyword} = {self.match_pattern}"

    def schedule_text(self) -> str:
        if self.schedule == self.Schedule.WINDOW:
            return f"between {self.window_from:%H:%M} and {self.window_to:%H:%M}"
        if self.schedule == self.Schedule.DAILY:
            return f"daily at {self.daily_at:%H:%M}"
        return "immediately" + (" (each instance)" if self.each_instance else "")


class Delivery(models.Model):
    """An instance a destination confirmed (C-STORE Success or Warning, or Storage Commitment):
    a resumed or retried job never sends it there again, and auto-purge asks these rows."""

    class Confirmation(models.TextChoices):
        STORE = "c-store", "C-STORE response"
        COMMITMENT = "commitment", "Storage Commitment"

    instance = models.ForeignKey("pacsone.Instance", on_delete=models.CASCADE, related_name="deliveries")
    destination = models.ForeignKey("pacsone.RemoteAE", on_delete=models.CASCADE, related_name="deliveries")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    class Commitment(models.TextChoices):
        NONE = "", "Not requested"
        PENDING = "pending", "Commitment pending"
        COMMITTED = "committed", "Committed"
        FAILED = "failed", "Commitment failed"
        NOT_RECEIVED = "not_received", "Commitment not received"
        UNSUPPORTED = "unsupported", "Destination does not support commitment"

    # What counts as confirmed for auto-purge (a destination asked for commitment must commit).
    SETTLED = (Commitment.NONE, Commitment.COMMITTED, Commitment.UNSUPPORTED)

    status = models.PositiveIntegerField(default=0)
    confirmation = models.CharField(max_length=16, choices=Confirmation.choices, default=Confirmation.STORE)
    delivered_at = models.DateTimeField(auto_now_add=True)
    # Storage Commitment (routing/commitment.py): its state, the Transaction UID that asked for it
    # (the destination's N-EVENT-REPORT is matched by it), and why it failed.
    commitment = models.CharField(max_length=16, choices=Commitment.choices, default=Commitment.NONE, blank=True)
    commitment_uid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    commitment_reason = models.CharField(max_length=128, blank=True, default="")
    committed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "destination"], name="one_delivery_per_destination")]
