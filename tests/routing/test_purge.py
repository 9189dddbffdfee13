"""Purge watermarks with a simulated usage function: above the high mark the oldest studies (by
date received) go until usage is below the low mark; the dry run lists exactly what the run
removes; legal hold, retention and pending jobs are respected; each purge is journaled."""

import datetime

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from audit.models import Action, Entry
from pacsone import schedules, storage
from pacsone.models import Instance, RetentionRule, StorageLocation, Study
from routing import pending as pending_module, purge
from routing.models import Job
from tests.helpers import ingest_instance, make_file
from tests.people import make_user

pytestmark = pytest.mark.django_db

TOTAL = 100_000


def simulated_usage(base: int):
    """A disk of TOTAL bytes on which `base` bytes are used by other things, plus the files
    indexed in the location (each counted once): usage follows the purges."""
    def usage_of(location):
        files = set(Instance.objects.filter(storage_location=location).values_list("file_path", "file_size"))
        return storage.Usage(total_bytes=TOTAL, used_bytes=base + sum(size for _p, size in files))
    return usage_of


def make_studies(folder, count, *, days_old=100, modality="CT"):
    """`count` studies of one image each, received one day apart, oldest first."""
    studies = []
    now = timezone.now()
    for n in range(count):
        uid = generate_uid()
        ingest_instance(make_file(folder, f"{uid}.dcm", study_uid=uid, Modality=modality, rows=64))
        study = Study.objects.get(study_instance_uid=uid)
        Study.objects.filter(pk=study.pk).update(received_at=now - datetime.timedelta(days=days_old - n))
        studies.append(Study.objects.get(pk=study.pk))
    return studies


@pytest.fixture
def location():
    location = storage.default_location()
    location.high_watermark, location.low_watermark = 80, 60
    location.save()
    return location


def file_size() -> int:
    return Instance.objects.first().file_size


def base_for(percent_after: float, studies_left: int) -> int:
    """The base usage that puts a location with `studies_left` images at `percent_after`."""
    return int(TOTAL * percent_after / 100) - studies_left * file_size()


def test_above_the_high_mark_the_oldest_go_until_below_the_low_mark(tmp_path, location):
    studies = make_studies(tmp_path, 6)
    size = file_size()
    # 85% in use with 6 images; the low mark of 60% needs 25% of the disk freed.
    base = base_for(85, 6)
    needed = (TOTAL * 85 // 100) - (TOTAL * 60 // 100 - 1)
    sizes = {s.pk: Instance.objects.get(series__study=s).file_size for s in studies}  # UIDs vary in length
    expected, freed = 0, 0
    while freed < needed:  # images to remove, oldest first
        freed += sizes[studies[expected].pk]
        expected += 1
    assert 1 <= expected < 6 and size * 2 < needed, "the figures must leave some studies and purge several"
    usage_of = simulated_usage(base)

    plan = purge.plan(location, usage_of)
    assert [p.study.pk for p in plan.studies] == [s.pk for s in studies[:expected]]  # oldest first
    assert plan.reaches_low_mark and "above the high watermark of 80%" in plan.summary
    assert all("oldest received not protected" in p.reason for p in plan.studies)

    result = purge.purge(location, usage_of)
    assert [p.study_pk for p in result.purged] == [p.study_pk for p in plan.studies]  # exactly the dry run
    assert list(Study.objects.order_by("received_at").values_list("pk", flat=True)) == \
        [s.pk for s in studies[expected:]]
    assert result.usage_after.percent_used < 60
    # Each study's purge is journaled with what it freed, and a summary for the location.
    entries = Entry.objects.filter(action=Action.PURGE).exclude(study_uid="")
    assert sorted(e.study_uid for e in entries) == sorted(p.study.study_instance_uid for p in plan.studies)
    for planned in plan.studies:
        entry = entries.get(study_uid=planned.study.study_instance_uid)
        assert f"1 instance, {sizes[planned.study_pk]} bytes freed" in entry.detail and entry.username == "system"
    summary = Entry.objects.get(action=Action.PURGE, study_uid="")
    freed = sum(sizes[p.study_pk] for p in plan.studies)
    assert f"{expected} {'study' if expected == 1 else 'studies'} purged, {freed} bytes freed" in summary.detail


def test_purged_files_are_removed_from_disk(tmp_path, location):
    studies = make_studies(tmp_path, 3)
    paths = {s.pk: list(Instance.objects.filter(series__study=s).values_list("file_path", flat=True)) for s in studies}
    result = purge.purge(location, simulated_usage(base_for(90, 3)))
    assert result.purged
    for purged in result.purged:
        assert all(not storage.exists(location, p) for p in paths[purged.study_pk])
    for study in studies[len(result.purged):]:
        assert all(storage.exists(location, p) for p in paths[study.pk])


def test_nothing_goes_at_or_below_the_high_mark(tmp_path, location):
    make_studies(tmp_path, 3)
    plan = purge.plan(location, simulated_usage(base_for(80, 3)))
    assert plan.studies == [] and "not above the high watermark" in plan.summary
    assert purge.purge(location, simulated_usage(base_for(80, 3))).purged == []
    assert Study.objects.count() == 3 and not Entry.objects.filter(action=Action.PURGE).exists()


def test_a_location_without_watermarks_is_never_purged(tmp_path):
    make_studies(tmp_path, 2)
    plan = purge.plan(storage.default_location(), simulated_usage(base_for(99, 2)))
    assert plan.studies == [] and "never purged" in plan.summary


def test_legal_hold_retention_and_pending_jobs_are_passed_over(tmp_path, location):
    held, young_ct, pending, finished_job, plain, mr = make_studies(tmp_path / "ct", 6, days_old=50)
    Study.objects.filter(pk=mr.pk).update(modalities_in_study="MR")
    Study.objects.filter(pk=held.pk).update(legal_hold=True)
    RetentionRule.objects.create(modality="", keep_days=10)  # every study: at least 10 days
    RetentionRule.objects.create(modality="CT", keep_days=37)  # CT: 37 days; the others are 45 to 50 days old
    Study.objects.filter(pk=young_ct.pk).update(received_at=timezone.now() - datetime.timedelta(days=20))
    owner = make_user("someone")
    queued = Job.objects.create(kind=Job.Kind.FORWARD, title="forward", owner=owner, state="queued")
    queued.studies.set([pending])
    done = Job.objects.create(kind=Job.Kind.FORWARD, title="forward", owner=owner, state=Job.State.DONE)
    done.studies.set([finished_job])

    # Everything must go to reach the low mark: only the unprotected ones are listed.
    usage_of = simulated_usage(base_for(99, 6))
    plan = purge.plan(location, usage_of)
    reasons = {s.study.pk: s.reason for s in plan.skipped}
    assert reasons[held.pk] == "under legal hold"
    assert reasons[young_ct.pk].startswith("retention: CT kept 37 days")
    assert reasons[pending.pk] == "has pending jobs"
    assert [p.study.pk for p in plan.studies] == [finished_job.pk, plain.pk, mr.pk]
    assert not plan.reaches_low_mark and "not enough" in plan.summary

    result = purge.purge(location, usage_of)
    assert {p.study_pk for p in result.purged} == {finished_job.pk, plain.pk, mr.pk}
    assert set(Study.objects.values_list("pk", flat=True)) == {held.pk, young_ct.pk, pending.pk}


def test_the_minimum_age_protects_every_modality(tmp_path, location):
    studies = make_studies(tmp_path, 2, days_old=5)
    RetentionRule.objects.create(modality="", keep_days=30)
    plan = purge.plan(location, simulated_usage(base_for(99, 2)))
    assert plan.studies == [] and {s.reason.split(" (")[0] for s in plan.skipped} == {"retention: minimum age 30 days"}
    assert len(plan.skipped) == len(studies)


def test_a_study_protected_between_dry_run_and_purge_stays(tmp_path, location, monkeypatch):
    first, second = make_studies(tmp_path, 2)
    usage_of = simulated_usage(base_for(99, 2))
    real_plan = purge.plan

    def plan_then_a_job_arrives(*args, **kwargs):
        made = real_plan(*args, **kwargs)
        job = Job.objects.create(kind=Job.Kind.FORWARD, title="late", state="queued")
        job.studies.set([first])
        return made

    monkeypatch.setattr(purge, "plan", plan_then_a_job_arrives)
    result = purge.purge(location, usage_of)
    assert [(planned.study_pk, why) for planned, why in result.refused] == [(first.pk, "has pending jobs")]
    assert [p.study_pk for p in result.purged] == [second.pk]
    assert Study.objects.filter(pk=first.pk).exists()
    assert all(storage.stored_exists(i) for i in Instance.objects.filter(series__study=first))
    assert "1 left: protected since the plan" in Entry.objects.get(action=Action.PURGE, study_uid="").detail


def test_pending_means_any_state_but_done_failed_cancelled(tmp_path):
    study = make_studies(tmp_path, 1)[0]
    job = Job.objects.create(kind=Job.Kind.FORWARD, title="forward")
    job.studies.set([study])
    for state, pending in [("queued", True), ("running", True), ("waiting", True), ("done", False),
                           ("failed", False), ("cancelled", False)]:
        Job.objects.filter(pk=job.pk).update(state=state)
        assert pending_module.has_pending_jobs(study) is pending and (study.pk in pending_module.pending_among([study.pk])) is pending, state


def test_the_dry_run_page_lists_what_purge_now_removes(client, tmp_path, location, monkeypatch):
    studies = make_studies(tmp_path, 4)
    monkeypatch.setattr(storage, "usage", simulated_usage(base_for(85, 4)))
    client.force_login(make_user("admin", ["system_admin"]))
    page = client.get(f"/storage/{location.pk}/purge/")
    assert page.status_code == 200
    listed = [s for s in studies if s.study_instance_uid.encode() in page.content]
    assert listed and b"Purge now" in page.content
    response = client.post(f"/storage/{location.pk}/purge/")
    assert response.status_code == 302
    assert set(Study.objects.values_list("pk", flat=True)) == {s.pk for s in studies} - {s.pk for s in listed}
    assert Entry.objects.filter(action=Action.PURGE, username="admin").count() == len(listed) + 1


def test_the_scheduled_check_is_in_the_schedules_and_purges(tmp_path, location, monkeypatch):
    from django_q.models import Schedule

    schedules.ensure_schedules()
    schedules.ensure_schedules()  # again at the next start: corrected, not doubled
    entry = Schedule.objects.get(name="purge watermarks")
    assert (entry.func, entry.args) == ("pacsone.schedules.run_once", "'routing.purge.check_watermarks'")
    assert entry.schedule_type == Schedule.MINUTES
    assert 1 <= entry.minutes <= 10
    make_studies(tmp_path, 3)
    StorageLocation.objects.create(name="unmeasurable", path=str(tmp_path / "nowhere"), high_watermark=90,
                                   low_watermark=80)
    real_usage = simulated_usage(base_for(95, 3))

    def usage(location):
        if location.name == "unmeasurable":
            raise FileNotFoundError(2, "No such file or directory")
        return real_usage(location)

    monkeypatch.setattr(storage, "usage", usage)
    assert purge.check_watermarks() >= 1  # the unmeasurable location does not stop the others
