"""Jobs: long actions (export, import, upload, forward, retrieve, ...) run by django-q2 workers,
with their progress for the job pages (DESIGN.md: routing/ holds job status)."""

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

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

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
    # and to those who may see every one of them (pacsone.access.job_contents_visible).
    studies = models.ManyToManyField("pacsone.Study", blank=True, related_name="jobs")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
        return self.state in (self.State.DONE, self.State.FAILED)
