"""The follow-up of ingest (routing, thumbnails, HL7) is recorded on the study row before it is
queued: a follow-up the broker lost (a Redis restart empties its queue) is queued again by the
minute schedule, so a routing rule still sends the study."""

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from pacsone import tasks
from pacsone.ingest import Origin, PostIngestBatch, ingest_file
from pacsone.models import RemoteAE, Study
from routing.models import Job, RoutingRule
from tests.helpers import make_file

pytestmark = pytest.mark.django_db


def ingest(tmp_path, name: str, **attributes) -> Study:
    batch = PostIngestBatch()
    result = ingest_file(make_file(tmp_path, name, **attributes), Origin("dicom", ae_title="CT1"), batch=batch)
    batch.flush()
    return Study.objects.get(pk=result.study_pk)


def test_a_follow_up_that_ran_is_no_longer_due(tmp_path):
    study = ingest(tmp_path, "a.dcm")  # the test settings run tasks at once
    assert study.follow_up_due is None
    assert tasks.requeue_lost_follow_ups() == "0 follow-ups queued again"


def test_a_follow_up_the_broker_lost_is_queued_again_and_routes_the_study(tmp_path):
    destination = RemoteAE.objects.create(ae_title="PEER", host="127.0.0.1", port=11112)
    rule = RoutingRule.objects.create(name="all CT", match_keyword="Modality", match_pattern="CT")
    rule.destinations.set([destination])
    with mock.patch("pacsone.tasks.async_task"):  # accepted by the broker, then lost with it
        study = ingest(tmp_path, "a.dcm", Modality="CT")
    assert study.follow_up_due is not None and not Job.objects.filter(kind=Job.Kind.ROUTE).exists()

    assert tasks.requeue_lost_follow_ups() == "0 follow-ups queued again"  # a busy queue is given time
    later = timezone.now() + datetime.timedelta(minutes=tasks.FOLLOW_UP_LOST_MINUTES + 1)
    assert tasks.requeue_lost_follow_ups(now=later) == "1 follow-up queued again"
    study.refresh_from_db()
    assert study.follow_up_due is None
    assert Job.objects.filter(kind=Job.Kind.ROUTE).count() == 1
