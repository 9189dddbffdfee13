"""Retry and cancel jobs (Job Status page, API): one or many, each journaled with the change.
The caller reaches the jobs through pacsone.access (a user their own, System Administration
all)."""

from django.db import transaction

from audit.journal import Action, record

from . import clock
from .models import Job

RETRYABLE = (Job.State.FAILED, Job.State.CANCELLED)
CANCELLABLE = Job.UNFINISHED


def do_retry_jobs(jobs, *, acting_user, request=None) -> list[int]:
    """Failed or cancelled jobs go back to the queue with their attempts renewed; what an
    earlier attempt delivered is not sent again. The pks retried."""
    from .runner import wake

    retried = []
    with transaction.atomic():
        for job in jobs:
            updated = Job.objects.filter(pk=job.pk, state__in=RETRYABLE).update(
                state=Job.State.QUEUED, attempts=0, next_attempt_at=clock.now(), claimed_by="", lease_until=None,
                finished_at=None, message=f"retry asked by {acting_user.get_username()}")
            if updated:
                retried.append(job.pk)
                record(Action.CONFIGURATION, request=request, user=acting_user, target=f"job {job.pk} retried",
                       detail=job.title)
    for pk in retried:
        wake(Job.objects.get(pk=pk))
    return retried


def do_cancel_jobs(jobs, *, acting_user, request=None) -> list[int]:
    """Queued, waiting or running jobs are cancelled; a running one stops after the instance it
    is sending (its worker loses the lease). The pks cancelled."""
    cancelled = []
    with transaction.atomic():
        for job in jobs:
            updated = Job.objects.filter(pk=job.pk, state__in=CANCELLABLE).update(
                state=Job.State.CANCELLED, claimed_by="", lease_until=None, finished_at=clock.now(),
                message=f"cancelled by {acting_user.get_username()}")
            if updated:
                cancelled.append(job.pk)
                record(Action.CONFIGURATION, request=request, user=acting_user, target=f"job {job.pk} cancelled",
                       detail=job.title)
    return cancelled
