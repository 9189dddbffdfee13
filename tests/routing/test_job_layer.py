"""The job layer: one conditional UPDATE claims a job (two workers never run it), an expired
lease is taken up again, transient failures retry with exponential back-off up to the limit,
permanent ones fail at once, a cancelled job stops, and pending studies are known."""

import datetime
import threading

import pytest
from django.db import connection

from pacsone.models import Study
from routing import clock
from routing.jobs import LeaseLost, PermanentError, Progress, TransientError, start_job
from routing.models import Job
from routing.pending import has_pending_jobs, studies_with_pending_jobs
from routing.runner import claim, run_due
from tests.helpers import ingest_instance, make_file

CALLS = []


def counts(progress, items):
    progress.start(items)
    for _ in range(items):
        progress.advance()
    CALLS.append(progress.job.pk)
    return f"{items} counted"


def peer_down(progress):
    raise TransientError("STORESCP at 127.0.0.1:1 cannot be reached: [Errno 111] Connection refused")


def refused(progress):
    raise PermanentError("1.2.3: error: data set does not match SOP class (0xA900)")


def queued_job(function="tests.routing.test_job_layer.counts", *args, **kwargs) -> Job:
    """A job row as start_job makes it, not run yet (its time not come)."""
    later = clock.now() + datetime.timedelta(hours=1)
    return start_job(Job.Kind.ROUTE, "test", None, function, *args, not_before=later, **kwargs)


@pytest.fixture
def frozen(monkeypatch):
    """The job layer's clock, set by the test."""
    moment = {"now": clock.now()}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])

    def advance(**delta):
        moment["now"] += datetime.timedelta(**delta)
        return moment["now"]

    return advance


@pytest.mark.django_db
def test_a_due_job_runs_at_once_and_records_its_progress():
    job = start_job(Job.Kind.EXPORT, "count", None, "tests.routing.test_job_layer.counts", 3)
    job.refresh_from_db()
    assert (job.state, job.done, job.total, job.attempts, job.message) == ("done", 3, 3, 1, "3 counted")
    assert job.claimed_by == "" and job.lease_until is None


@pytest.mark.django_db
def test_only_one_of_two_claims_wins(frozen):
    job = queued_job("tests.routing.test_job_layer.counts", 2)
    assert claim(job.pk) is None  # not due yet
    frozen(hours=2)
    first, second = claim(job.pk), claim(job.pk)
    assert first and second is None
    job.refresh_from_db()
    assert (job.state, job.claimed_by, job.attempts) == ("running", first, 1)


@pytest.mark.django_db(transaction=True)
def test_threads_racing_for_one_job_claim_it_once(frozen):
    job = queued_job("tests.routing.test_job_layer.counts", 1)
    frozen(hours=2)
    tokens, barrier = [], threading.Barrier(6)

    def race():
        try:
            barrier.wait()
            tokens.append(claim(job.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([token for token in tokens if token]) == 1, tokens
    assert Job.objects.get(pk=job.pk).attempts == 1


@pytest.mark.django_db
def test_an_expired_lease_is_taken_up_again_and_the_old_worker_changes_nothing(frozen, settings):
    job = queued_job("tests.routing.test_job_layer.counts", 2)
    frozen(hours=2)
    dead = claim(job.pk)  # this worker is SIGKILLed: its lease is never renewed
    assert claim(job.pk) is None
    frozen(seconds=settings.PACS_JOB_LEASE_SECONDS + 1)
    assert run_due() == [job.pk]
    job.refresh_from_db()
    assert (job.state, job.attempts, job.done) == ("done", 2, 2)
    with pytest.raises(LeaseLost):  # the first worker, had it survived, can no longer report
        Progress(job, dead).still_mine()


@pytest.mark.django_db
def test_a_job_whose_worker_died_on_its_last_attempt_fails_with_the_reason(frozen, settings):
    job = queued_job("tests.routing.test_job_layer.counts", 1, max_attempts=1)
    frozen(hours=2)
    assert claim(job.pk)
    frozen(seconds=settings.PACS_JOB_LEASE_SECONDS + 1)
    assert run_due() == []
    job.refresh_from_db()
    assert job.state == "failed" and "lease expired" in job.last_error


@pytest.mark.django_db
def test_a_transient_failure_retries_with_exponential_back_off_then_fails(frozen, settings):
    settings.PACS_JOB_RETRY_SECONDS = 60
    job = queued_job("tests.routing.test_job_layer.peer_down")
    start = frozen(hours=2)
    assert run_due() == [job.pk]
    job.refresh_from_db()
    assert (job.state, job.attempts, job.next_attempt_at) == ("queued", 1, start + datetime.timedelta(seconds=60))
    assert "cannot be reached" in job.last_error and job.state_text.startswith("queued (attempt 2 of 3 at")
    frozen(seconds=59)
    assert run_due() == []  # not before its time
    frozen(seconds=1)
    assert run_due() == [job.pk]
    job.refresh_from_db()
    assert job.next_attempt_at == clock.now() + datetime.timedelta(seconds=120)  # doubled
    frozen(seconds=120)
    assert run_due() == [job.pk]
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("failed", 3)
    assert job.message.startswith("failed after 3 attempts: STORESCP at 127.0.0.1:1 cannot be reached")


@pytest.mark.django_db
def test_a_permanent_failure_fails_at_once():
    job = start_job(Job.Kind.ROUTE, "refused", None, "tests.routing.test_job_layer.refused")
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.last_error == "1.2.3: error: data set does not match SOP class (0xA900)"


def cancelled_midway(progress):
    progress.start(3)
    progress.advance()
    progress.flush()
    Job.objects.filter(pk=progress.job.pk).update(state=Job.State.CANCELLED, claimed_by="")  # a person cancels
    progress.still_mine()  # the worker learns it here (or at its next progress write)
    raise AssertionError("not reached")


@pytest.mark.django_db
def test_a_cancelled_running_job_stops_and_stays_cancelled():
    job = start_job(Job.Kind.ROUTE, "cancel", None, "tests.routing.test_job_layer.cancelled_midway")
    job.refresh_from_db()
    assert (job.state, job.done) == ("cancelled", 1)


@pytest.mark.django_db
def test_studies_with_unfinished_jobs_are_pending(tmp_path):
    study = Study.objects.get(pk=ingest_instance(make_file(tmp_path)).series.study_id)
    job = queued_job("tests.routing.test_job_layer.counts", 1, studies=[study])
    assert list(studies_with_pending_jobs()) == [study] and has_pending_jobs(study)
    assert not has_pending_jobs(study, excluding=job)
    for state in ("waiting", "running"):
        Job.objects.filter(pk=job.pk).update(state=state)
        assert has_pending_jobs(study)
    for state in ("done", "failed", "cancelled"):
        Job.objects.filter(pk=job.pk).update(state=state)
        assert not studies_with_pending_jobs().exists()


@pytest.mark.django_db
def test_every_schedule_is_created_and_corrected_at_start():
    from django_q.models import Schedule

    from pacsone.schedules import ENTRIES, ensure_schedules

    ensure_schedules()
    Schedule.objects.filter(name="job dispatcher").update(args="'wrong.place'", minutes=30)
    ensure_schedules()
    dispatcher = Schedule.objects.get(name="job dispatcher")
    assert (dispatcher.func, dispatcher.args, dispatcher.minutes) == (
        "pacsone.schedules.run_once", "'routing.runner.dispatch'", 1)
    assert Schedule.objects.count() == len([entry for entry in ENTRIES if entry.wanted()])


@pytest.mark.django_db
def test_a_job_whose_twin_is_running_gives_its_claim_back(frozen):
    first = queued_job("tests.routing.test_job_layer.counts", 1, dedupe_key="route:1:1:1")
    second = queued_job("tests.routing.test_job_layer.counts", 1, dedupe_key="route:1:1:1")
    frozen(hours=2)
    assert claim(first.pk)
    assert claim(second.pk) is None
    second.refresh_from_db()
    assert (second.state, second.attempts, second.claimed_by) == ("queued", 0, "")
    assert second.next_attempt_at == clock.now() + datetime.timedelta(seconds=5)
