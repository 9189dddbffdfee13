"""Storage Commitment after routing: the records of what each destination committed.

A destination registered with "request storage commitment" (RemoteAE.requests_storage_commitment)
gets, after a routing job sent it instances, an N-ACTION naming every instance it confirmed by
C-STORE and has not committed yet (pacsone.dicom.commitment.request). Its deliveries
(routing.models.Delivery) carry the commitment's state and Transaction UID:
- pending: asked, no answer yet. The report may come on the same association (within
  PACS_COMMITMENT_WAIT_SECONDS) or later on an association the destination opens to our SCP
  (`take_report`, matched by Transaction UID and by the reporter's AE title);
- committed / failed (with the destination's Failure Reason, per instance: a retry of the job
  sends a failed instance again);
- not received: no report within PACS_COMMITMENT_TIMEOUT_MINUTES (`expire_job`, a job queued
  for that time, fails with the count: it shows on Job Status);
- unsupported: the destination did not accept the SOP class at negotiation; C-STORE Success
  counts, as for a destination without the setting.
Auto-purge (routing/autopurge.py) counts committed, unsupported and not-asked deliveries only; a
report that comes after the routing job queues the auto-purge the job's end could not do.
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydicom.uid import generate_uid

from audit.journal import Action, Outcome, record
from pacsone.dicom import commitment as protocol
from pacsone.humanize import count as counted

from . import clock
from .jobs import PermanentError, TransientError, finish_queued_job, start_job
from .models import Delivery, Job

log = logging.getLogger(__name__)

MAX_REASONS = 20


def expiry_key(transaction_uid: str) -> str:
    return f"commitment:{transaction_uid}"


def request_after_routing(job: Job, destination, instances, study) -> str:
    """Ask `destination` to commit the `instances` (a queryset) it confirmed and did not commit
    yet; a sentence for the job's summary. PermanentError lists the instances it failed to
    commit; TransientError when it cannot be reached (the job's retry asks again)."""
    if not destination.requests_storage_commitment:
        return ""
    asked = Delivery.objects.filter(destination=destination, instance__in=instances,
                                    commitment__in=[Delivery.Commitment.PENDING, Delivery.Commitment.NOT_RECEIVED])
    rows = list(asked.values_list("pk", "instance__sop_class_uid", "instance__sop_instance_uid"))
    if not rows:
        return ""
    transaction_uid = generate_uid()
    Delivery.objects.filter(pk__in=[pk for pk, _c, _i in rows]).update(
        commitment=Delivery.Commitment.PENDING, commitment_uid=transaction_uid, commitment_reason="")
    references = [protocol.Reference(sop_class, sop_instance) for _pk, sop_class, sop_instance in rows]
    # The time-out is queued before asking: a report that comes at once, on any association,
    # finds it and marks it done (record_result).
    timeout = settings.PACS_COMMITMENT_TIMEOUT_MINUTES
    start_job(Job.Kind.COMMITMENT, f"Storage commitment from {destination.ae_title}", None,
              "routing.commitment.expire_job", transaction_uid, destination.pk, studies=[study],
              not_before=clock.now() + datetime.timedelta(minutes=timeout), dedupe_key=expiry_key(transaction_uid))
    try:
        result = protocol.request(destination, transaction_uid, references, settings.PACS_COMMITMENT_WAIT_SECONDS)
    except protocol.NotSupported as refused:
        finish_queued_job(expiry_key(transaction_uid), str(refused))
        Delivery.objects.filter(commitment_uid=transaction_uid).update(
            commitment=Delivery.Commitment.UNSUPPORTED, commitment_reason=str(refused)[:128])
        return f"{refused}: C-STORE success counts"
    except protocol.CommitmentError as error:
        finish_queued_job(expiry_key(transaction_uid), f"not asked: {error}")
        raise (TransientError if error.transient else PermanentError)(f"storage commitment: {error}") from None
    _journal(destination, transaction_uid, study, f"requested for {counted(len(references), 'instance', 'instances')}")
    if result is None:
        return f"storage commitment requested for {counted(len(references), 'instance', 'instances')}, report awaited"
    committed, failures = record_result(result, destination)
    if failures:
        raise PermanentError("\n".join([f"storage commitment: {committed} committed, {len(failures)} failed",
                                        *failures[:MAX_REASONS]]))
    return f"{counted(committed, 'instance', 'instances')} committed"


def record_result(result: protocol.Result, destination) -> tuple[int, list[str]]:
    """Write a report into the deliveries of its transaction: (committed count, failures in words)."""
    deliveries = dict(Delivery.objects.filter(commitment_uid=result.transaction_uid, destination=destination)
                      .values_list("instance__sop_instance_uid", "pk"))
    now = timezone.now()
    committed = [deliveries[ref.sop_instance] for ref in result.committed if ref.sop_instance in deliveries]
    failures = []
    with transaction.atomic():
        for start in range(0, len(committed), 500):
            Delivery.objects.filter(pk__in=committed[start:start + 500]).update(
                commitment=Delivery.Commitment.COMMITTED, confirmation=Delivery.Confirmation.COMMITMENT,
                committed_at=now, commitment_reason="")
        for reference, reason in result.failed:
            pk = deliveries.get(reference.sop_instance)
            if pk is None:
                continue
            text = protocol.failure_text(reason)
            Delivery.objects.filter(pk=pk).update(commitment=Delivery.Commitment.FAILED, commitment_reason=text)
            failures.append(f"{reference.sop_instance}: {text}")
        finish_queued_job(expiry_key(result.transaction_uid), f"report received: {result.summary()}")
    return len(committed), failures


def take_report(result: protocol.Result, reported_by: str, address: str) -> str:
    """A report that came to our SCP: recorded, and the auto-purges it allows queued. What is
    wrong with it in words (unknown transaction, another AE), or "" when it was taken."""
    delivery = (Delivery.objects.filter(commitment_uid=result.transaction_uid).select_related("destination", "job")
                .first())
    if delivery is None:
        return "unknown Transaction UID"
    destination = delivery.destination
    if destination.ae_title.strip() != (reported_by or "").strip():
        record(Action.FORWARD, username="routing", ae_title=reported_by, address=address, outcome=Outcome.DENIED,
               target=f"storage commitment {result.transaction_uid}"[:255],
               detail=f"report refused: the commitment was asked of {destination.ae_title}")
        return f"the commitment was asked of {destination.ae_title}"
    study = delivery.job.studies.select_related("patient").first() if delivery.job else None
    with transaction.atomic():  # the records and their journal entry together
        committed, failures = record_result(result, destination)
        _journal(destination, result.transaction_uid, study, f"report received: {committed} committed, "
                 f"{len(failures)} failed" + (f"; {failures[0]}" if failures else ""),
                 Outcome.FAILURE if failures else Outcome.SUCCESS)
    _queue_auto_purges(result.transaction_uid)
    return ""


def _queue_auto_purges(transaction_uid: str) -> None:
    """The routing jobs of this transaction whose rule purges after routing: the study may go now."""
    jobs = Job.objects.filter(deliveries__commitment_uid=transaction_uid, rule__auto_purge=True).distinct()
    for job in jobs.select_related("rule"):
        study = job.studies.first()
        if study is not None:
            start_job(Job.Kind.PURGE, f"Auto-purge of rule {job.rule.name} after storage commitment", None,
                      "routing.autopurge.purge_job", study.pk, job.rule.pk)


def expire_job(progress, transaction_uid: str, destination_pk: int) -> str:
    """The commitment's time is up: what is still pending shows "commitment not received"."""
    progress.start(1)
    waited = settings.PACS_COMMITMENT_TIMEOUT_MINUTES
    missing = Delivery.objects.filter(commitment_uid=transaction_uid, commitment=Delivery.Commitment.PENDING)
    sample = list(missing.values_list("instance__sop_instance_uid", flat=True)[:MAX_REASONS])
    count = missing.update(commitment=Delivery.Commitment.NOT_RECEIVED,
                           commitment_reason=f"commitment not received within {waited} min")
    progress.advance()
    if not count:
        return "nothing pending under this transaction (reported, or asked again)"
    delivery = Delivery.objects.filter(commitment_uid=transaction_uid).select_related("destination").first()
    ae_title = delivery.destination.ae_title if delivery else str(destination_pk)
    study = progress.job.studies.select_related("patient").first()
    _journal(None if delivery is None else delivery.destination, transaction_uid, study,
             f"commitment not received within {waited} min for {counted(count, 'instance', 'instances')}", Outcome.FAILURE)
    raise PermanentError("\n".join([f"commitment not received from {ae_title} within {waited} min for "
                                    f"{counted(count, 'instance', 'instances')} (auto-purge will not happen)", *sample]))


def _journal(destination, transaction_uid: str, study, detail: str, outcome=Outcome.SUCCESS) -> None:
    subject = {}
    if study is not None:
        subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}
    record(Action.FORWARD, username="routing", ae_title=destination.ae_title if destination else "",
           address=destination.host if destination else "", outcome=outcome,
           target=f"storage commitment {transaction_uid}"[:255], detail=detail[:2000], **subject)


MAX_LISTED = 50


def deliveries_of(job: Job):
    """The deliveries a job's page reports the commitment of: a routing job's own, or those of
    the transaction a time-out job watches."""
    if job.kind == Job.Kind.ROUTE:
        return Delivery.objects.filter(job=job)
    if job.kind == Job.Kind.COMMITMENT and job.function == "routing.commitment.expire_job" and job.arguments:
        return Delivery.objects.filter(commitment_uid=str(job.arguments[0]))
    return Delivery.objects.none()


def commitment_report(job: Job) -> dict | None:
    """For the job page: how many deliveries are in each commitment state, and the instances
    not committed (pending, failed, not received) with the reason; None when none was asked."""
    deliveries = deliveries_of(job).exclude(commitment=Delivery.Commitment.NONE)
    counts = {}
    for state in deliveries.values_list("commitment", flat=True):
        counts[state] = counts.get(state, 0) + 1
    if not counts:
        return None
    labels = dict(Delivery.Commitment.choices)
    unsettled = deliveries.exclude(commitment__in=Delivery.SETTLED).order_by("commitment", "pk")
    return {
        "counts": [(labels[state], count) for state, count in sorted(counts.items())],
        "problems": [(uid, labels[state], reason) for uid, state, reason in unsettled.values_list(
            "instance__sop_instance_uid", "commitment", "commitment_reason")[:MAX_LISTED]],
        "more": max(0, unsettled.count() - MAX_LISTED),
    }
