"""Start a job on the django-q2 workers and report its progress.

A job function receives a `Progress`; it calls `progress.start(total)`, `progress.advance()`
as items are done, and returns a final message. An exception marks the job failed with the
error, so nothing long-running fails silently.
"""

import logging

from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from .models import Job

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, job: Job):
        self.job = job

    def start(self, total: int) -> None:
        Job.objects.filter(pk=self.job.pk).update(total=total, state=Job.State.RUNNING, started_at=timezone.now())

    def advance(self, done: int = 1, failed: int = 0) -> None:
        Job.objects.filter(pk=self.job.pk).update(done=F("done") + done, failed=F("failed") + failed)

    def note(self, message: str) -> None:
        Job.objects.filter(pk=self.job.pk).update(message=message[:5000])

    def set_result(self, relative_path: str) -> None:
        Job.objects.filter(pk=self.job.pk).update(result_path=relative_path)


def start_job(kind: str, title: str, owner, function: str, *args, studies=()) -> Job:
    """Create the job row and queue `function(progress, *args)` (a dotted path). The title is
    shown to everyone who lists jobs: it names no patient. `studies` are those the job reads or
    changes; they decide who may see its message and result."""
    job = Job.objects.create(kind=kind, title=title[:255], owner=owner)
    if studies:
        job.studies.set(studies)
    async_task("routing.jobs.run_job", job.pk, function, *args, task_name=f"job-{job.pk}")
    return job


def _shown(exc: Exception) -> str:
    """What a failed job's page says: never a server path (an OSError names its file; the log
    has the whole exception)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def run_job(job_pk: int, function: str, *args) -> None:
    from django.utils.module_loading import import_string

    job = Job.objects.get(pk=job_pk)
    Job.objects.filter(pk=job_pk).update(state=Job.State.RUNNING, started_at=timezone.now())
    try:
        message = import_string(function)(Progress(job), *args)
    except Exception as exc:
        log.exception("job failed id=%s kind=%s", job_pk, job.kind)
        Job.objects.filter(pk=job_pk).update(state=Job.State.FAILED, finished_at=timezone.now(),
                                             message=f"failed: {_shown(exc)}"[:5000])
        return
    Job.objects.filter(pk=job_pk).update(state=Job.State.DONE, finished_at=timezone.now(),
                                         message=(message or "")[:5000])
