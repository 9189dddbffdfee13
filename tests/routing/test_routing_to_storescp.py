"""Routing to dcmtk's storescp (a real peer): by source AE and by attribute pattern, over one
association per study and destination; a window rule with a frozen clock; a destination that is
down, then up, gets every instance exactly once after retries; auto-purge only once every
destination confirmed every instance."""

import datetime
import subprocess
import time

import pytest

from audit.models import Entry
from pacsone.ingest import Origin
from pacsone.models import Study
from routing import clock
from routing.models import Delivery, Job, RoutingRule
from routing.runner import run_due
from tests.helpers import dcmtk_program, make_dataset, write_dataset
from tests.routing.archive import sop_uids, store_study
from tests.routing.peers import DCMTK_ENV, StoreScp

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_quiet_time(settings):
    settings.PACS_ROUTING_QUIET_SECONDS = 0
    settings.PACS_JOB_RETRY_SECONDS = 60


@pytest.fixture
def storescp(tmp_path):
    peer = StoreScp(tmp_path / "storescp")
    peer.register()
    with peer:
        yield peer


@pytest.fixture
def frozen(monkeypatch):
    moment = {"now": clock.now()}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])

    def set_to(value: datetime.datetime | None = None, **delta):
        moment["now"] = value if value is not None else moment["now"] + datetime.timedelta(**delta)
        return moment["now"]

    return set_to


def finished(job: Job, timeout: float = 20) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.finished:
            break
        time.sleep(0.05)
    return job


def rule(name="r", destinations=(), **fields) -> RoutingRule:
    made = RoutingRule.objects.create(name=name, **fields)
    made.destinations.set(destinations)
    return made


def test_a_rule_by_source_ae_sends_what_a_modality_sent_us_over_one_association(scp, storescp, tmp_path):
    rule("from-ct", [storescp.register()], source_ae_pattern="CT?_*")
    _ae, port = scp
    files = [write_dataset(make_dataset(study_uid="1.2.826.9.1", sop_uid=f"1.2.826.9.1.{n}", InstanceNumber=n),
                           tmp_path / "send" / f"{n}.dcm") for n in range(1, 6)]
    other = write_dataset(make_dataset(study_uid="1.2.826.9.2", sop_uid="1.2.826.9.2.1"), tmp_path / "other.dcm")
    storescu = dcmtk_program("storescu")
    for calling, paths in (("CT1_ROOM", files), ("MR1_ROOM", [other])):
        done = subprocess.run([storescu, "-aet", calling, "-aec", "PACSONE", "127.0.0.1", str(port), *map(str, paths)],
                              env=DCMTK_ENV, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    job = finished(Job.objects.get(kind="route"))  # routed after the association's end, off its path
    assert job.state == "done", (job.state, job.last_error)
    assert storescp.received() == {f"1.2.826.9.1.{n}": 1 for n in range(1, 6)}
    assert storescp.associations() == 1
    forward = Entry.objects.get(action="forward", study_uid="1.2.826.9.1")
    assert forward.outcome == "success" and forward.ae_title == "STORESCP" and "5 of 5 confirmed" in forward.detail


def test_a_rule_by_pattern_sends_matching_studies_only(storescp, tmp_path):
    rule("test-patients", [storescp.register()], match_keyword="PatientID", match_pattern="TEST*")
    store_study(tmp_path, "1.2.826.9.3", 4, patient_id="TEST42")
    store_study(tmp_path, "1.2.826.9.4", 2, patient_id="REAL7")
    rule("by-name", [storescp.register()], match_keyword="PatientName", match_pattern="doe^j?hn")  # any case
    store_study(tmp_path, "1.2.826.9.5", 1, patient_id="REAL8")
    assert storescp.received() == {uid: 1 for uid in sop_uids("1.2.826.9.3", 4) | sop_uids("1.2.826.9.5", 1)}
    assert set(Delivery.objects.values_list("instance__sop_instance_uid", flat=True)) == set(storescp.received())


def test_a_window_rule_sends_only_inside_its_window_across_midnight(storescp, tmp_path, frozen):
    noon = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
    frozen(noon)
    rule("night", [storescp.register()], match_keyword="Modality", match_pattern="CT",
         schedule=RoutingRule.Schedule.WINDOW, window_from=datetime.time(22, 0), window_to=datetime.time(6, 0))
    store_study(tmp_path, "1.2.826.9.6", 3)
    job = Job.objects.get(kind="route")
    assert job.state == "waiting" and job.next_attempt_at == noon.replace(hour=22)
    assert job.state_text == "waiting for its window (from 2026-11-30 22:00)"
    frozen(noon.replace(hour=21, minute=59))
    assert run_due() == [] and not storescp.received(settle=0)
    frozen(noon + datetime.timedelta(hours=14))  # 02:00 the next day: still inside
    assert run_due() == [job.pk]
    assert storescp.received() == {uid: 1 for uid in sop_uids("1.2.826.9.6", 3)}


def test_a_job_that_meets_a_closed_window_waits_for_the_next_without_spending_an_attempt(storescp, tmp_path, frozen):
    frozen(datetime.datetime(2026, 11, 30, 23, 0, tzinfo=datetime.timezone.utc))
    rule("night", [storescp.register()], match_keyword="Modality", match_pattern="CT",
         schedule=RoutingRule.Schedule.WINDOW, window_from=datetime.time(22, 0), window_to=datetime.time(6, 0),
         max_attempts=1)
    store_study(tmp_path, "1.2.826.9.7", 2)  # inside: sent
    frozen(datetime.datetime(2026, 12, 1, 7, 0, tzinfo=datetime.timezone.utc))
    store_study(tmp_path, "1.2.826.9.7", 3)  # a third instance after the window closed
    job = Job.objects.filter(kind="route").latest("pk")
    job.refresh_from_db()
    assert job.state == "waiting" and job.attempts == 0
    assert job.next_attempt_at == datetime.datetime(2026, 12, 1, 22, 0, tzinfo=datetime.timezone.utc)
    frozen(datetime.datetime(2026, 12, 1, 22, 5, tzinfo=datetime.timezone.utc))
    run_due()
    assert storescp.received() == {uid: 1 for uid in sop_uids("1.2.826.9.7", 3)}  # only the third was new


def test_a_destination_down_then_up_gets_every_instance_exactly_once(tmp_path, frozen):
    peer = StoreScp(tmp_path / "late")
    rule("to-late", [peer.register()], match_keyword="PatientID", match_pattern="TEST*")
    store_study(tmp_path, "1.2.826.9.8", 6, patient_id="TEST1")
    job = Job.objects.get(kind="route")
    assert (job.state, job.attempts) == ("queued", 1)
    assert "cannot be reached" in job.last_error and job.message.startswith("attempt 1 of 3 failed: 0 of 6")
    frozen(seconds=61)
    assert run_due() == [job.pk]  # still down: the second attempt fails too
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("queued", 2)
    peer.start()
    try:
        frozen(seconds=121)
        assert run_due() == [job.pk]
        job.refresh_from_db()
        assert (job.state, job.done, job.total) == ("done", 6, 6), job.last_error
        assert peer.received() == {uid: 1 for uid in sop_uids("1.2.826.9.8", 6)}
        frozen(hours=1)
        store_study(tmp_path, "1.2.826.9.8", 6, patient_id="TEST1")  # the same instances again: nothing new
        assert peer.received() == {uid: 1 for uid in sop_uids("1.2.826.9.8", 6)}
    finally:
        peer.stop()


def test_a_failed_job_retried_by_a_person_delivers_once_the_destination_is_back(tmp_path, frozen, client):
    from tests.people import make_user

    peer = StoreScp(tmp_path / "late")
    rule("once", [peer.register()], match_keyword="PatientID", match_pattern="TEST*", max_attempts=1)
    store_study(tmp_path, "1.2.826.9.9", 3, patient_id="TEST1")
    job = Job.objects.get(kind="route")
    assert job.state == "failed" and "cannot be reached" in job.last_error
    peer.start()
    try:
        client.force_login(make_user("admin", ["system_admin"]))
        response = client.post("/jobs/bulk", {"job": [job.pk], "action": "retry"})
        assert response.status_code == 302
        job.refresh_from_db()
        assert job.state == "done" and peer.received() == {uid: 1 for uid in sop_uids("1.2.826.9.9", 3)}
        assert Entry.objects.filter(action="configuration", target=f"job {job.pk} retried").count() == 1
    finally:
        peer.stop()


def test_auto_purge_waits_until_every_destination_confirmed_every_instance(storescp, tmp_path, frozen):
    late = StoreScp(tmp_path / "late", ae_title="LATESCP")
    rule("purge", [storescp.register(), late.register()], match_keyword="PatientID", match_pattern="TEST*",
         auto_purge=True)
    study = store_study(tmp_path, "1.2.826.9.10", 4, patient_id="TEST1")
    kept = store_study(tmp_path, "1.2.826.9.11", 2, patient_id="OTHER")
    assert Study.objects.filter(pk=study.pk).exists()  # STORESCP confirmed all, LATESCP nothing yet
    assert not Entry.objects.filter(action="purge").exists()
    late.start()
    try:
        frozen(seconds=61)
        run_due()
        assert late.received() == {uid: 1 for uid in sop_uids("1.2.826.9.10", 4)}
    finally:
        late.stop()
    assert not Study.objects.filter(pk=study.pk).exists() and Study.objects.filter(pk=kept.pk).exists()
    purge = Entry.objects.get(action="purge")
    assert purge.study_uid == "1.2.826.9.10" and "4 instances" in purge.detail and "LATESCP" in purge.detail


def test_auto_purge_keeps_a_study_with_a_failed_instance(tmp_path):
    from pacsone.models import RemoteAE
    from routing.autopurge import do_auto_purge

    destination = RemoteAE.objects.create(ae_title="NOWHERE", host="127.0.0.1", port=1)
    made = rule("purge", [destination], match_keyword="PatientID", match_pattern="NOTHING", auto_purge=True)
    study = store_study(tmp_path, "1.2.826.9.12", 2, patient_id="TEST1")
    first = study.series.get().instances.order_by("pk").first()
    Delivery.objects.create(instance=first, destination=destination)
    assert do_auto_purge(study, made) == "kept: not every destination confirmed every instance"
    Delivery.objects.create(instance=study.series.get().instances.order_by("pk").last(), destination=destination)
    Job.objects.create(kind="route", title="pending", function="x").studies.set([study])
    assert do_auto_purge(study, made) == "kept: the study has pending jobs"
    Job.objects.all().update(state="done")
    assert do_auto_purge(study, made) == "purged 2 instances" and not Study.objects.filter(pk=study.pk).exists()


def test_a_person_forward_goes_over_one_association(storescp, tmp_path, client):
    from pacsone.forward import do_forward_study
    from tests.people import make_user

    study = store_study(tmp_path, "1.2.826.9.13", 7)
    job = do_forward_study(study, storescp.register(), acting_user=make_user("fwd", ["view", "forward"]))
    job.refresh_from_db()
    assert job.state == "done" and job.done == 7
    assert storescp.received() == {uid: 1 for uid in sop_uids("1.2.826.9.13", 7)}
    assert storescp.associations() == 1


@pytest.mark.parametrize("options, expected", [
    (("+xa",), "1.2.840.10008.1.2.5"),  # takes RLE: sent as stored
    ((), "1.2.840.10008.1.2.1"),  # uncompressed only: decompressed on the way
])
def test_a_compressed_instance_goes_as_stored_when_accepted_else_decompressed(tmp_path, options, expected):
    from pydicom import dcmread

    from pacsone.ingest import ingest_file
    from tests.helpers import pydicom_file

    peer = StoreScp(tmp_path / "peer", options=options)
    rule("rle", [peer.register()], match_keyword="Modality", match_pattern="MR")
    peer.start()
    try:
        result = ingest_file(pydicom_file("MR_small_RLE.dcm"), Origin("import"))
        assert result.outcome.accepted, result.reason
        job = Job.objects.get(kind="route")
        assert job.state == "done", job.last_error
        [received] = peer.files().values()
    finally:
        peer.stop()
    ds = dcmread(received)
    assert ds.file_meta.TransferSyntaxUID == expected
    assert ds.pixel_array.shape == dcmread(pydicom_file("MR_small_RLE.dcm")).pixel_array.shape
