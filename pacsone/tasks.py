"""Work queued after ingest (django-q2), kept out of the association's critical path."""

import datetime
import logging

from django.utils import timezone
from django_q.tasks import async_task

from audit.journal import Action, record

from hl7 import events as hl7_events

from . import stats_rollup
from .models import Study
from .humanize import count

log = logging.getLogger(__name__)


# A follow-up still due this long after it was queued was lost by the broker (or its worker
# died): it is queued again. Longer than a busy queue's wait, so that it rarely runs twice.
FOLLOW_UP_LOST_MINUTES = 10


def follow_up_due(study_pks) -> None:
    """Record, before queueing, that these studies' follow-up is due: the study row, not the
    broker, is the truth (a Redis restart loses its queue)."""
    if not study_pks:
        return
    try:
        Study.objects.filter(pk__in=list(study_pks)).update(follow_up_due=timezone.now())
    except Exception:  # the database is gone: the stored instances are safe, the next ingest marks it
        log.exception("follow-up not marked due study_pks=%s", sorted(study_pks))


def requeue_lost_follow_ups(now=None) -> str:
    """The minute schedule: queue again the follow-ups due for FOLLOW_UP_LOST_MINUTES."""
    before = (now or timezone.now()) - datetime.timedelta(minutes=FOLLOW_UP_LOST_MINUTES)
    lost = list(Study.objects.filter(follow_up_due__lt=before).order_by("follow_up_due").values_list("pk", flat=True)[:500])
    Study.objects.filter(pk__in=lost).update(follow_up_due=timezone.now())
    for study_pk in lost:
        log.warning("follow-up of study_pk=%s lost (broker restarted?): queued again", study_pk)
        queue_after_ingest(study_pk)
    return f"{count(len(lost), 'follow-up', 'follow-ups')} queued again"


def queue_after_ingest(study_pk: int) -> None:
    """Queue the follow-up of a study that received instances. A failure to queue loses nothing:
    the instances are stored and journaled, and the next ingest into the study queues it again."""
    try:
        async_task("pacsone.tasks.after_ingest", study_pk, task_name=f"after-ingest-{study_pk}")
    except Exception:
        log.exception("could not queue after_ingest study_pk=%s", study_pk)


def after_ingest(study_pk: int, stored: int = 0, sender: dict | None = None) -> None:
    """Queue the study's routing (the routing table's rules it matches) and render its page's
    thumbnails. (The study's counts are exact already: the ingest transaction keeps them,
    pacsone/study_counts.py; the STORE entry is written by PostIngestBatch.flush. `stored` and
    `sender` are accepted for tasks queued before that.)"""
    stats_rollup.studies_changed([study_pk])  # an older study's day is rolled up again
    began = timezone.now()
    route(study_pk)
    warm_thumbnails(study_pk)
    hl7_events.study_received(study_pk)  # worklist step done, HL7 notifications (hl7/events.py)
    # Done, unless more instances arrived meanwhile and marked it due again (their own task runs).
    Study.objects.filter(pk=study_pk, follow_up_due__lte=began).update(follow_up_due=None)


def route(study_pk: int) -> None:
    """Routing jobs for the study (routing.matching); a failure here is logged, and the next
    ingest into the study tries again."""
    from routing.matching import route_study

    try:
        route_study(study_pk)
    except Exception:
        log.exception("routing not queued study_pk=%s", study_pk)


def warm_thumbnails(study_pk: int) -> None:
    """The study page's series thumbnails, rendered before anyone opens it; never fatal."""
    from .rendering import warm_study_thumbnails

    try:
        warm_study_thumbnails(study_pk)
    except Exception:
        log.exception("thumbnails not rendered study_pk=%s", study_pk)


# Edits are journaled by the page that made them (as Modify), not again here.
UNJOURNALED_CHANNELS = {"edit"}


def journal_store(study_pk: int, stored: int, sender: dict) -> None:
    if sender.get("channel") in UNJOURNALED_CHANNELS:
        return
    study = Study.objects.filter(pk=study_pk).select_related("patient").first()
    if study is None:
        return
    record(
        Action.STORE if sender.get("channel") == "dicom" else Action.IMPORT,
        username=sender.get("username", ""),
        ae_title=sender.get("ae_title", ""),
        address=sender.get("address", ""),
        patient_id=study.patient.patient_id,
        study_uid=study.study_instance_uid,
        target=f"{count(stored, 'instance', 'instances')} via {sender.get('channel', 'unknown')}",
    )
