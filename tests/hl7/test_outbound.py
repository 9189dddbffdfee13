"""Outbound notifications: a study whose images arrive completes its worklist step (without
MPPS) and is announced to the destinations that want `received`, as a job; failures are
reported as such and journaled."""

import pytest

from audit.models import Entry
from hl7.inbound import handle
from hl7.models import Destination, ScheduledStep
from hl7.outbound import NotificationError, send_notification
from routing.models import Job
from tests.helpers import free_port, ingest_instance, make_file
from tests.people import make_study

from .messages import msa, orm_o01
from .receiver import Receiver


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


def test_images_arriving_complete_the_step_and_notify_the_destination(transactional_db, receiver, tmp_path, settings):
    settings.PACS_ROUTING_QUIET_SECONDS = 0  # the study counts as complete at once
    Destination.objects.create(name="RIS", host="127.0.0.1", port=receiver.port, events="received,read")
    assert msa(handle(orm_o01("PL1", "ACC9", patient_id="P9").encode(), "127.0.0.1").decode())[1] == "AA"
    ingest_instance(make_file(tmp_path, patient_id="P9", AccessionNumber="ACC9"))
    assert receiver.arrived.wait(10)
    (text,) = receiver.received
    segments = {line.split("|")[0]: line.split("|") for line in text.split("\r") if line}
    assert segments["MSH"][8] == "ORM^O01^ORM_O01"
    assert segments["PID"][3] == "P9"
    assert segments["ORC"][1] == "SC" and segments["ORC"][5] == "CM"
    assert segments["OBR"][18] == "ACC9"
    step = ScheduledStep.objects.get()
    assert step.state == ScheduledStep.State.COMPLETED and step.study is not None
    assert segments["ZDS"][1].split("^")[0] == step.study.study_instance_uid
    job = Job.objects.get(title="HL7 received notification to RIS")
    assert job.state == Job.State.DONE and job.message == "acknowledged AA"
    assert Entry.objects.filter(action="forward", target="HL7 received notification to RIS", outcome="success").exists()


def test_a_study_arriving_in_several_batches_is_notified_once_it_is_quiet(transactional_db, receiver, tmp_path,
                                                                         settings):
    settings.PACS_ROUTING_QUIET_SECONDS = 30
    Destination.objects.create(name="RIS", host="127.0.0.1", port=receiver.port, events="received")
    for number in range(3):  # three ingests of one study (as over three associations)
        ingest_instance(make_file(tmp_path, name=f"{number}.dcm", patient_id="P7", AccessionNumber="ACC7",
                                  study_uid="1.2.826.7", sop_uid=f"1.2.826.7.1.{number}"))
    (job,) = Job.objects.filter(kind=Job.Kind.NOTIFY)
    assert job.state == Job.State.QUEUED and job.next_attempt_at > job.created_at
    assert receiver.received == []  # nothing sent while instances may still come


def test_marking_a_study_read_sends_an_oru(transactional_db, receiver):
    from pacsone.actions import do_mark_study
    from tests.people import make_user

    Destination.objects.create(name="RIS", host="127.0.0.1", port=receiver.port, events="read")
    study = make_study("1.2.3.5", "P5", accession="ACC5")
    do_mark_study(study, True, acting_user=make_user("root"))
    assert receiver.arrived.wait(10)
    assert "|ORU^R01^ORU_R01|" in receiver.received[0]


def test_a_refused_connection_is_a_transient_failure_and_journaled(transactional_db):
    destination = Destination.objects.create(name="DOWN", host="127.0.0.1", port=free_port(), events="received")
    study = make_study("1.2.3.6", "P6")
    with pytest.raises(NotificationError) as raised:
        send_notification(destination.pk, "received", study.pk)
    assert not raised.value.permanent
    assert Entry.objects.filter(target="HL7 received notification to DOWN", outcome="failure").exists()


def test_an_ar_is_a_permanent_failure(transactional_db):
    rejecting = Receiver(answer="AR")
    try:
        destination = Destination.objects.create(name="PICKY", host="127.0.0.1", port=rejecting.port)
        study = make_study("1.2.3.7", "P7")
        with pytest.raises(NotificationError) as raised:
            send_notification(destination.pk, "received", study.pk)
        assert raised.value.permanent
    finally:
        rejecting.stop()


def test_our_own_listener_reads_our_status_message(hl7_port):
    """Round trip through both of our ends: the ORM status message (SC, CM) completes the order."""
    assert msa(handle(orm_o01("", "ACC8", patient_id="P8").encode(), "127.0.0.1").decode())[1] == "AA"
    destination = Destination.objects.create(name="SELF", host="127.0.0.1", port=hl7_port)
    study = make_study("1.2.3.8", "P8", accession="ACC8")
    assert send_notification(destination.pk, "received", study.pk) == "AA"
    assert ScheduledStep.objects.get().state == ScheduledStep.State.COMPLETED
