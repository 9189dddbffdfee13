"""Jobs: long actions (export, import, upload, forward, routing, notifications, ...) kept as rows
and run by routing.runner, with their progress for the job pages.

A job function receives a `Progress`; it calls `progress.start(total)`, `progress.advance()`
as items are done, and returns a final message. What it raises decides what happens next:
- `TransientError` (peer down, timeout, 0xA7xx): queued again after an exponential back-off,
  failed once `max_attempts` claims have been used;
- `Reschedule(when)`: back to waiting until `when` (a routing window closed), not an attempt;
- anything else (`PermanentError`, 0xA9xx, an unknown SOP class, a bug): failed at once.
Every state change is a conditional UPDATE on the lease holder, so a worker that lost its
lease (the job was cancelled, or taken up again after its lease ran out) changes nothing.
"""

import datetime
import logging
import time

from django.conf import settings
from django.db.models import F

from . import clock
from .models import Job

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Worth another attempt later: the peer is down, timed out or out of resources."""


class PermanentError(Exception):
    """Another attempt would fail the same way: refused data, unknown SOP class, bad setup."""


class Reschedule(Exception):
    """Stop now and wait until `when` without spending an attempt (a window closed)."""

    def __init__(self, when: datetime.datetime, reason: str = ""):
        super().__init__(reason or f"waiting until {when:%Y-%m-%d %H:%M}")
        self.when = when


class LeaseLost(Exception):
    """This worker no longer holds the job: it was cancelled or taken up by another worker."""


def lease_end(now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or clock.now()) + datetime.timedelta(seconds=settings.PACS_JOB_LEASE_SECONDS)


PROGRESS_INTERVAL = 0.25  # seconds between two writes of a running job's counts and lease


class Progress:
    """What a running job reports. With a lease `token`, each write also renews the lease and
    raises LeaseLost when the job is no longer this worker's (cancelled, or taken over). Counts
    are written at most every PROGRESS_INTERVAL (and by `flush`): a job sending hundreds of
    instances a second writes its delivery records, not its progress, for each."""

    def __init__(self, job: Job, token: str = ""):
        self.job = job
        self.token = token
        self._done = self._failed = 0
        self._written_at = time.monotonic()

    def _mine(self):
        jobs = Job.objects.filter(pk=self.job.pk)
        return jobs.filter(claimed_by=self.token, state=Job.State.RUNNING) if self.token else jobs

    def _update(self, **fields) -> None:
        if self.token:
            fields["lease_until"] = lease_end()
        if self._done or self._failed:
            fields.setdefault("done", F("done") + self._done)
            fields.setdefault("failed", F("failed") + self._failed)
            self._done = self._failed = 0
        self._written_at = time.monotonic()
        if not self._mine().update(**fields) and self.token:
            raise LeaseLost(f"job {self.job.pk} is no longer held by {self.token}")

    def start(self, total: int, done: int = 0) -> None:
        """`done`: items finished by an earlier attempt (a resumed job)."""
        self._done = self._failed = 0
        self._update(total=total, done=done, failed=0, state=Job.State.RUNNING)

    def advance(self, done: int = 1, failed: int = 0) -> None:
        self._done += done
        self._failed += failed
        if time.monotonic() - self._written_at >= PROGRESS_INTERVAL:
            self._update()

    def flush(self) -> None:
        """Write the counts not written yet."""
        if self._done or self._failed:
            self._update()

    def still_mine(self) -> None:
        """Raise LeaseLost when the job was cancelled or taken over (between two items)."""
        self._update()

    def note(self, message: str) -> None:
        self._update(message=message[:5000])

    def set_result(self, relative_path: str) -> None:
        self._update(result_path=relative_path)


def start_job(kind: str, title: str, owner, function: str, *args, studies=(), max_attempts: int = 3,
              not_before: datetime.datetime | None = None, waiting: bool = False, after_done: str = "",
              rule=None, dedupe_key: str = "") -> Job:
    """Create the job row (queued, or waiting for its window until `not_before`) and wake the
    dispatcher; `function(progress, *args)` is a dotted path, `args` JSON values. The title is
    shown to everyone who lists jobs: it names no patient. `studies` are those the job reads or
    changes; they decide who may see its message and result, and they are pending until the
    job finishes."""
    job = Job.objects.create(
        kind=kind, title=title[:255], owner=owner, function=function, arguments=list(args),
        max_attempts=max(1, max_attempts), next_attempt_at=not_before or clock.now(),
        state=Job.State.WAITING if waiting else Job.State.QUEUED, after_done=after_done, rule=rule,
        dedupe_key=dedupe_key,
    )
    if studies:
        job.studies.set(studies)
    from .runner import wake

    wake(job)
    return job


def join_queued_job(dedupe_key: str, when: datetime.datetime) -> Job | None:
    """The queued (or waiting) job with this `dedupe_key`, moved to start at `when` (never
    sooner than a retry's back-off): later work joins it instead of queueing the same send
    again (a study's later instances, the same HL7 notification). None when there is none, or
    when a worker claimed it meanwhile (then the caller starts a new one, which the dispatcher
    runs after it: runner.py never runs two jobs with one key at once)."""
    unclaimed = [Job.State.QUEUED, Job.State.WAITING]
    queued = Job.objects.filter(dedupe_key=dedupe_key, state__in=unclaimed).first()
    if queued is None:
        return None
    later = max(when, queued.next_attempt_at) if queued.attempts and queued.next_attempt_at else when
    if not Job.objects.filter(pk=queued.pk, state__in=unclaimed).update(next_attempt_at=later):
        return None
    queued.next_attempt_at = later
    return queued


def finish_queued_job(dedupe_key: str, message: str) -> int:
    """Mark the not yet claimed job with this `dedupe_key` done without running it: what it was
    waiting to do has happened (a storage commitment report came before its time-out)."""
    return Job.objects.filter(dedupe_key=dedupe_key, state__in=[Job.State.QUEUED, Job.State.WAITING]).update(
        state=Job.State.DONE, message=message[:5000], finished_at=clock.now(), claimed_by="", lease_until=None)


def retry_delay(attempts: int) -> datetime.timedelta:
    """Exponential back-off: the base after the first attempt, doubled after each further one."""
    return datetime.timedelta(seconds=settings.PACS_JOB_RETRY_SECONDS * 2 ** max(0, attempts - 1))


def shown_error(exc: BaseException) -> str:
    """What a failed job's page says: never a server path (an OSError names its file; the log
    has the whole exception)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def run_job(job_pk: int, function: str = "", *args) -> None:
    """The django-q2 task of jobs queued before jobs were rows with their own function: claim
    the job and run it here."""
    from .runner import claim, run_claimed

    if function:
        Job.objects.filter(pk=job_pk, function="").update(function=function, arguments=list(args))
    token = claim(job_pk)
    if token:
        run_claimed(job_pk, token)
