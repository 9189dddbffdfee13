"""Who runs jobs, and how two workers never run one job.

- `claim(pk)`: one conditional UPDATE turns a due job (queued or waiting, its time come; or
  running with an expired lease: its worker died) into running under a fresh lease token.
  Exactly one of several workers or nodes racing for it gets a row count of 1.
- `dispatch()`: the django-q2 entry (a wake-up task after each new job, and a schedule every
  minute, pacsone/schedules.py). It claims due jobs up to PACS_JOB_RUNNERS and starts each in
  its own process (`manage.py runjob PK TOKEN`), so a long job never meets django-q2's task
  timeout and never holds a task worker that thumbnails and other short tasks need. When a job
  falls due shortly (a routed study's quiet time) and no runner of this node waits, it starts
  one that waits for it (`runjob --serve`).
- `run_claimed(pk, token)`: runs the job's function and records the outcome, renewing the lease
  from a heartbeat thread while it runs.
- `run_due()`: claims and runs due jobs in this process (tests, `manage.py runjob --due`).
With PACS_TASKS_SYNC (tests) a new job that is due runs at once in the caller's process.
"""

import datetime
import logging
import os
import subprocess
import threading
import uuid

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils.module_loading import import_string

from . import clock
from .jobs import LeaseLost, Progress, Reschedule, TransientError, lease_end, retry_delay, shown_error
from .models import Job
from pacsone.humanize import count

log = logging.getLogger(__name__)

_children: list[subprocess.Popen] = []  # runner processes started by this worker, reaped later


def new_token() -> str:
    """Names the node, the process and the claim (shown in Job Status as who runs a job)."""
    return f"{settings.PACS_NODE_NAME[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _due(now: datetime.datetime) -> Q:
    waiting_done = Q(state__in=[Job.State.QUEUED, Job.State.WAITING]) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    abandoned = Q(state=Job.State.RUNNING, lease_until__lt=now)
    return waiting_done | abandoned


def fail_exhausted_abandoned(now: datetime.datetime) -> int:
    """Jobs whose worker died on their last allowed attempt: failed, with the reason."""
    return Job.objects.filter(state=Job.State.RUNNING, lease_until__lt=now, attempts__gte=F("max_attempts")).update(
        state=Job.State.FAILED, finished_at=now, claimed_by="", lease_until=None,
        last_error="the process running it stopped (its lease expired) on the last allowed attempt",
        message="failed: the process running it stopped on the last allowed attempt")


def claim(job_pk: int, now: datetime.datetime | None = None) -> str | None:
    """The lease token if this caller now runs the job, else None (not due, or someone else's)."""
    now = now or clock.now()
    fail_exhausted_abandoned(now)
    token = new_token()
    claimed = Job.objects.filter(_due(now), pk=job_pk, attempts__lt=F("max_attempts")).update(
        state=Job.State.RUNNING, claimed_by=token, lease_until=lease_end(now), attempts=F("attempts") + 1,
        started_at=now)
    if claimed != 1:
        return None
    if _twin_running(job_pk, token, now):
        return None
    return token


TWIN_RETRY_SECONDS = 5


def _twin_running(job_pk: int, token: str, now: datetime.datetime) -> bool:
    """Two jobs for the same study, rule and destination (queued at the same moment by two
    post-ingest tasks) must not send at once: a job that finds its twin running gives its claim
    back and tries again a little later (both may give it back; neither sends twice)."""
    key = Job.objects.filter(pk=job_pk).values_list("dedupe_key", flat=True).first()
    if not key or not Job.objects.filter(dedupe_key=key, state=Job.State.RUNNING, lease_until__gte=now).exclude(
            pk=job_pk).exists():
        return False
    Job.objects.filter(pk=job_pk, claimed_by=token).update(
        state=Job.State.QUEUED, claimed_by="", lease_until=None, attempts=F("attempts") - 1,
        next_attempt_at=now + datetime.timedelta(seconds=TWIN_RETRY_SECONDS))
    return True


def due_job_pks(now: datetime.datetime, limit: int) -> list[int]:
    """Due jobs, oldest first; not one whose twin (same dedupe key: the same study, rule and
    destination) is running, so that the two never send the same instances at once."""
    busy = Job.objects.filter(state=Job.State.RUNNING, lease_until__gte=now).exclude(dedupe_key="")
    return list(Job.objects.filter(_due(now), attempts__lt=F("max_attempts")).exclude(function="")
                .exclude(dedupe_key__in=busy.values("dedupe_key"))
                .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


def _finish(job_pk: int, token: str, **fields) -> bool:
    fields.setdefault("claimed_by", "")
    fields.setdefault("lease_until", None)
    return Job.objects.filter(pk=job_pk, claimed_by=token, state=Job.State.RUNNING).update(**fields) == 1


class Heartbeat(threading.Thread):
    """Renews the lease while a job runs in this process; a job that outlives its lease would be
    taken up by another worker."""

    def __init__(self, job_pk: int, token: str):
        super().__init__(daemon=True, name=f"lease-{job_pk}")
        self.job_pk, self.token = job_pk, token
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(1.0, settings.PACS_JOB_LEASE_SECONDS / 3)
        try:
            while not self.stopped.wait(interval):
                renewed = Job.objects.filter(pk=self.job_pk, claimed_by=self.token, state=Job.State.RUNNING).update(
                    lease_until=lease_end())
                if not renewed:
                    return
        except Exception:
            log.exception("lease not renewed job=%s", self.job_pk)
        finally:
            connection.close()


def run_claimed(job_pk: int, token: str, heartbeat: bool = False) -> str:
    """Run a job this caller claimed; returns its new state."""
    job = Job.objects.get(pk=job_pk)
    beat = Heartbeat(job_pk, token) if heartbeat else None
    if beat:
        beat.start()
    log.info("job start id=%s kind=%s attempt=%d/%d token=%s", job.pk, job.kind, job.attempts, job.max_attempts, token)
    progress = Progress(job, token)
    try:
        try:
            message = import_string(job.function)(progress, *job.arguments)
        finally:
            progress.flush()  # the counts the job did not write yet, whatever its outcome
    except LeaseLost:
        log.warning("job lost its lease id=%s token=%s", job.pk, token)
        return Job.objects.get(pk=job_pk).state
    except Reschedule as wait:
        _finish(job.pk, token, state=Job.State.WAITING, next_attempt_at=wait.when, attempts=F("attempts") - 1,
                message=str(wait)[:5000])
        return Job.State.WAITING
    except TransientError as exc:
        return _transient(job, token, exc)
    except Exception as exc:
        log.exception("job failed id=%s kind=%s", job.pk, job.kind)
        error = shown_error(exc)
        _finish(job.pk, token, state=Job.State.FAILED, finished_at=clock.now(), last_error=error[:5000],
                message=f"failed: {error}"[:5000])
        return Job.State.FAILED
    finally:
        if beat:
            beat.stopped.set()
    if not _finish(job.pk, token, state=Job.State.DONE, finished_at=clock.now(), message=(message or "")[:5000],
                   last_error=""):
        return Job.objects.get(pk=job_pk).state
    log.info("job done id=%s kind=%s", job.pk, job.kind)
    if job.after_done:
        try:
            import_string(job.after_done)(Job.objects.get(pk=job.pk))
        except Exception:
            log.exception("after-done step failed job=%s step=%s", job.pk, job.after_done)
    return Job.State.DONE


def _transient(job: Job, token: str, exc: TransientError) -> str:
    error = shown_error(exc)
    now = clock.now()
    if job.attempts >= job.max_attempts:
        log.warning("job failed after %d attempts id=%s error=%s", job.attempts, job.pk, error)
        _finish(job.pk, token, state=Job.State.FAILED, finished_at=now, last_error=error[:5000],
                message=f"failed after {count(job.attempts, 'attempt', 'attempts')}: {error}"[:5000])
        return Job.State.FAILED
    when = now + retry_delay(job.attempts)
    log.info("job will retry id=%s attempt=%d at=%s error=%s", job.pk, job.attempts, when.isoformat(), error)
    _finish(job.pk, token, state=Job.State.QUEUED, next_attempt_at=when, last_error=error[:5000],
            message=f"attempt {job.attempts} of {job.max_attempts} failed: {error}"[:5000])
    return Job.State.QUEUED


def run_due(now: datetime.datetime | None = None, limit: int = 1000) -> list[int]:
    """Claim and run due jobs here, one after another; the pks run."""
    ran = []
    fail_exhausted_abandoned(now or clock.now())
    for job_pk in due_job_pks(now or clock.now(), limit):
        token = claim(job_pk, now)
        if token:
            run_claimed(job_pk, token)
            ran.append(job_pk)
    return ran


RUNNER_IDLE_SECONDS = 30  # a runner process with nothing due soon exits after this long
RUNNER_POLL_SECONDS = 0.5


class IdleRunnerLock:
    """Held by the one runner process of this node that waits for work: the dispatcher starts
    a waiting runner only when none holds it (a lock file in the data folder, released by the
    kernel when the process dies)."""

    def __init__(self):
        self.path = settings.DATA_DIR / "run" / "idle-job-runner.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def held_elsewhere(self) -> bool:
        if self.acquire():
            self.release()
            return False
        return True


def _soon(now: datetime.datetime, seconds: float) -> bool:
    """Is a queued or waiting job due within `seconds`?"""
    return Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.WAITING], attempts__lt=F("max_attempts"),
                              next_attempt_at__lte=now + datetime.timedelta(seconds=seconds)).exists()


def serve(job_pk: int | None = None, token: str | None = None, idle_seconds: float = RUNNER_IDLE_SECONDS) -> int:
    """A runner process: its claimed job if any, then whatever falls due while work is near (a
    routed study whose quiet time ends is sent within a second, not at the next minute's
    dispatch), within PACS_JOB_RUNNERS jobs running at once. While it waits it holds the idle
    runner lock; a second waiting runner of this node has nothing to do and exits. The number
    of jobs run."""
    import time

    pid_file = runner_pid_folder() / f"{os.getpid()}.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    ran = 0
    idle = IdleRunnerLock()
    try:
        if job_pk is not None:
            run_claimed(job_pk, token, heartbeat=True)
            ran = 1
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_seconds:
            if not idle.acquire():
                break  # another runner of this node waits already
            now = clock.now()
            running = Job.objects.filter(state=Job.State.RUNNING, lease_until__gte=now).count()
            claimed = None
            if running < settings.PACS_JOB_RUNNERS:
                for candidate in due_job_pks(now, 5):
                    token = claim(candidate, now)
                    if token:
                        claimed = (candidate, token)
                        break
            if claimed:
                idle.release()  # busy: the dispatcher may start another waiting runner
                run_claimed(*claimed, heartbeat=True)
                ran, idle_since = ran + 1, time.monotonic()
                continue
            if _soon(now, idle_seconds):
                idle_since = time.monotonic()
            time.sleep(RUNNER_POLL_SECONDS)
    finally:
        idle.release()
        pid_file.unlink(missing_ok=True)
    return ran


def runner_pid_folder():
    """Each runner process of this node names itself here while it lives (for operators, and for
    whoever stops the node: runners outlive the task workers that started them on purpose)."""
    return settings.DATA_DIR / "run" / "job-runners"


def _reap() -> None:
    _children[:] = [child for child in _children if child.poll() is None]


def spawn(*args: str) -> None:
    """Start a runner process (`runjob PK TOKEN`, or `runjob --serve` to wait for work)."""
    from pacsone.supervisor import manage_py

    child = subprocess.Popen(manage_py("runjob", *args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, start_new_session=True, cwd=settings.BASE_DIR)
    _children.append(child)


def dispatch(now: datetime.datetime | None = None) -> str:
    """Start due jobs in runner processes, up to PACS_JOB_RUNNERS at once."""
    _reap()
    now = now or clock.now()
    fail_exhausted_abandoned(now)
    running = Job.objects.filter(state=Job.State.RUNNING, lease_until__gte=now).count()
    started = []
    for job_pk in due_job_pks(now, max(0, settings.PACS_JOB_RUNNERS - running)):
        token = claim(job_pk, now)
        if not token:
            continue
        try:
            spawn(str(job_pk), token)
        except OSError as error:
            log.error("job runner not started job=%s error=%s", job_pk, error)
            _finish(job_pk, token, state=Job.State.QUEUED, attempts=F("attempts") - 1)
            continue
        started.append(job_pk)
    if not started and running < settings.PACS_JOB_RUNNERS and _soon(now, RUNNER_IDLE_SECONDS) \
            and not IdleRunnerLock().held_elsewhere():
        try:
            spawn("--serve")  # a job falls due shortly (a study's quiet time): be there on time
        except OSError as error:
            log.error("waiting job runner not started error=%s", error)
        else:
            return "started a runner for jobs due shortly"
    return f"started {count(len(started), 'job', 'jobs')}" + (f": {started}" if started else "")


def wake(job: Job) -> None:
    """A new job: run it now in tests (PACS_TASKS_SYNC), else ask a task worker to dispatch
    once the job's row is committed. Losing the wake-up loses nothing: the minute schedule
    dispatches too."""
    if settings.Q_CLUSTER.get("sync"):
        if job.state == Job.State.QUEUED and job.next_attempt_at <= clock.now():
            token = claim(job.pk)
            if token:
                run_claimed(job.pk, token)
                job.refresh_from_db()
        return
    transaction.on_commit(_queue_dispatch)


def _queue_dispatch() -> None:
    from django_q.tasks import async_task

    try:
        async_task("routing.runner.dispatch", task_name="job-dispatch")
    except Exception:
        log.exception("job dispatch not queued (the minute schedule will start it)")
        close_old_connections()
