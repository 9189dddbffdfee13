"""Storage Commitment after routing (as SCU), against a pynetdicom destination: the N-EVENT-REPORT
on the routing job's association or on a later association to our SCP, matched by Transaction
UID and recorded per instance; auto-purge waits for it; failures listed per instance; a report
that never comes leaves "commitment not received" and no purge; a destination that refuses the
SOP class at negotiation counts C-STORE success."""

import datetime

import pytest

from audit.models import Entry
from pacsone.models import Study
from routing import clock
from routing.models import Delivery, Job, RoutingRule
from routing.runner import run_due
from tests.routing.archive import sop_uids, store_study
from tests.routing.peers import CommitmentDestination

pytestmark = pytest.mark.django_db(transaction=True)
STUDY = "1.2.826.0.1.3680043.10.91"


@pytest.fixture(autouse=True)
def no_quiet_time(settings):
    settings.PACS_ROUTING_QUIET_SECONDS = 0
    settings.PACS_COMMITMENT_WAIT_SECONDS = 5


@pytest.fixture
def destination_factory():
    made = []

    def make(**options) -> CommitmentDestination:
        destination = CommitmentDestination(**options)
        destination.register()
        made.append(destination)
        return destination

    yield make
    for destination in made:
        destination.stop()


def route_to(destination: CommitmentDestination, auto_purge: bool = False) -> RoutingRule:
    rule = RoutingRule.objects.create(name="commit", match_keyword="PatientID", match_pattern="*", auto_purge=auto_purge)
    rule.destinations.set([destination.register()])
    return rule


def commitments() -> dict[str, str]:
    return dict(Delivery.objects.values_list("instance__sop_instance_uid", "commitment"))


def test_a_report_on_the_same_association_is_recorded_and_the_study_purged(tmp_path, destination_factory):
    destination = destination_factory(report_on="same")
    route_to(destination, auto_purge=True)
    store_study(tmp_path, STUDY, 3)
    job = Job.objects.get(kind="route")
    assert job.state == "done", job.last_error
    assert "3 instances committed" in job.message
    assert len(destination.actions) == 1 and destination.status == 0x0000
    assert not Study.objects.filter(study_instance_uid=STUDY).exists()  # purged: every instance committed
    purge = Entry.objects.get(action="purge")
    assert "3 instances, every one confirmed by COMMITSCP" in purge.detail
    assert Entry.objects.filter(target=f"storage commitment {destination.actions[0]}", action="forward").exists()


def test_a_report_on_a_new_association_to_our_scp_is_matched_and_then_the_study_purged(tmp_path, scp,
                                                                                      destination_factory, settings):
    settings.PACS_COMMITMENT_WAIT_SECONDS = 0  # do not wait on the routing association
    _ae, port = scp
    destination = destination_factory(report_on="new", our_port=port)
    destination.go.clear()  # it reports once the test has looked at the state before
    route_to(destination, auto_purge=True)
    store_study(tmp_path, STUDY, 3)
    job = Job.objects.get(kind="route")
    assert job.state == "done", job.last_error
    assert "report awaited" in job.message
    assert Study.objects.filter(study_instance_uid=STUDY).exists()  # not purged before the commitment
    expiry = Job.objects.get(kind="commitment")
    assert expiry.state == "queued"
    assert set(commitments().values()) == {"pending"}
    destination.go.set()
    assert destination.reported.wait(15) and destination.status == 0x0000
    report = Entry.objects.get(target=f"storage commitment {destination.actions[0]}", detail__startswith="report")
    assert report.detail == "report received: 3 committed, 0 failed" and report.ae_title == "COMMITSCP"
    expiry.refresh_from_db()
    assert expiry.state == "done" and "3 committed, 0 failed" in expiry.message
    purge = Job.objects.get(kind="purge")
    assert purge.state == "done" and "purged 3 instances" in purge.message
    assert not Study.objects.filter(study_instance_uid=STUDY).exists()


def test_failures_are_listed_per_instance_and_a_retry_sends_those_again(tmp_path, destination_factory):
    failing = f"{STUDY}.1.2"
    destination = destination_factory(report_on="same", fail=(failing,))
    route_to(destination, auto_purge=True)
    store_study(tmp_path, STUDY, 3)
    job = Job.objects.get(kind="route")
    assert job.state == "failed"
    assert "2 committed, 1 failed" in job.last_error and f"{failing}: no such object instance (0x0112)" in job.last_error
    assert commitments()[failing] == "failed"
    assert Study.objects.filter(study_instance_uid=STUDY).exists()
    destination.fail.clear()
    Job.objects.filter(pk=job.pk).update(state="queued", attempts=0, next_attempt_at=clock.now())
    run_due()
    job.refresh_from_db()
    assert job.state == "done", job.last_error
    assert destination.stored.count(failing) == 2 and len(destination.stored) == 4  # only the failed one again
    assert not Study.objects.filter(study_instance_uid=STUDY).exists()


def test_a_commitment_that_never_comes_shows_not_received_and_nothing_is_purged(tmp_path, destination_factory,
                                                                                settings):
    settings.PACS_COMMITMENT_WAIT_SECONDS = 1
    settings.PACS_COMMITMENT_TIMEOUT_MINUTES = 30
    destination = destination_factory(report_on="never")
    route_to(destination, auto_purge=True)
    store_study(tmp_path, STUDY, 2)
    assert Job.objects.get(kind="route").state == "done"
    assert set(commitments().values()) == {"pending"}
    run_due(clock.now() + datetime.timedelta(minutes=31))
    expiry = Job.objects.get(kind="commitment")
    assert expiry.state == "failed"
    assert "commitment not received from COMMITSCP within 30 min for 2 instances" in expiry.last_error
    assert set(commitments().values()) == {"not_received"}
    assert Study.objects.filter(study_instance_uid=STUDY).exists()
    assert Entry.objects.filter(outcome="failure", detail__contains="commitment not received").exists()


def test_a_destination_without_the_sop_class_counts_c_store_success(tmp_path, destination_factory):
    from routing.autopurge import do_auto_purge

    destination = destination_factory(commitment=False)
    rule = route_to(destination)
    study = store_study(tmp_path, STUDY, 2)
    job = Job.objects.get(kind="route")
    assert job.state == "done" and "does not accept Storage Commitment" in job.message
    assert set(commitments().values()) == {"unsupported"}
    assert sorted(destination.stored) == sorted(sop_uids(STUDY, 2))
    assert do_auto_purge(study, rule) == "purged 2 instances"


def test_a_report_from_another_ae_or_for_an_unknown_transaction_is_refused(tmp_path, destination_factory):
    from pacsone.dicom.commitment import Reference, Result
    from routing.commitment import take_report

    destination = destination_factory(report_on="never")
    route_to(destination)
    store_study(tmp_path, STUDY, 1)
    uid = destination.actions[0] if destination.actions else ""
    reference = Reference("1.2.840.10008.5.1.4.1.1.2", f"{STUDY}.1.1")
    assert take_report(Result("1.2.3.999", [reference]), "COMMITSCP", "127.0.0.1") == "unknown Transaction UID"
    assert take_report(Result(uid, [reference]), "INTRUDER", "127.0.0.1") == "the commitment was asked of COMMITSCP"
    assert set(commitments().values()) == {"pending"}
    assert Entry.objects.filter(outcome="denied", ae_title="INTRUDER").exists()


def test_the_job_page_lists_the_instances_not_committed_to_those_who_may_see_them(tmp_path, destination_factory,
                                                                                   client):
    from tests.people import make_user

    failing = f"{STUDY}.1.2"
    destination = destination_factory(report_on="same", fail=(failing,))
    route_to(destination)
    store_study(tmp_path, STUDY, 3)
    job = Job.objects.get(kind="route")
    client.force_login(make_user("admin", ["system_admin", "view"]))
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Storage commitment" in page and "Committed: 2" in page and "Commitment failed: 1" in page
    assert failing in page and "no such object instance (0x0112)" in page
    client.force_login(make_user("operator", ["system_admin"]))  # lists every job; may not see the private study
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert failing not in page and "Commitment failed" not in page
    client.force_login(make_user("reader", ["view"]))  # not their job
    before = Entry.objects.filter(outcome="denied").count()
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert Entry.objects.filter(outcome="denied").count() == before + 1
