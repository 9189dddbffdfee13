"""What the HL7 interface does when something happens elsewhere in the archive.

- `study_received(study_pk)`, from pacsone.tasks.after_ingest: the worklist entries of the
  study (same accession number or Study Instance UID) still open are done, even without MPPS;
  destinations that want `received` are notified.
- `study_marked_read(study_pk)`: destinations that want `read` are notified.
- `mpps_completed(performed_pk)`, from the MPPS SCP: destinations that want `mpps` are notified.
Each is safe to call twice and never raises into its caller (the log has the failure).
"""

import logging

from django.db import transaction
from django.db.models import Q

from audit.journal import Action, record
from pacsone.models import Study

from .models import PerformedStep, ScheduledStep
from .outbound import queue_notifications

log = logging.getLogger(__name__)

OPEN = [ScheduledStep.State.SCHEDULED, ScheduledStep.State.IN_PROGRESS]


def complete_steps_of(study: Study) -> int:
    """Mark the study's open worklist entries completed; how many."""
    match = Q(study_instance_uid=study.study_instance_uid)
    if study.accession_number:
        match |= Q(accession_number=study.accession_number)
    with transaction.atomic():
        steps = list(ScheduledStep.objects.select_for_update().filter(match, state__in=OPEN))
        for step in steps:
            step.state = ScheduledStep.State.COMPLETED
            step.study = study
            step.save(update_fields=["state", "study", "updated_at"])
            record(Action.MODIFY, username="hl7:worklist", patient_id=study.patient.patient_id,
                   study_uid=study.study_instance_uid, target=f"worklist step {step.pk}",
                   detail="completed: the study's images arrived")
    return len(steps)


def study_received(study_pk: int) -> None:
    try:
        study = Study.objects.select_related("patient").filter(pk=study_pk).first()
        if study is None:
            return
        complete_steps_of(study)
        queue_notifications("received", study_pk=study.pk)
    except Exception:
        log.exception("hl7 study_received failed study_pk=%s", study_pk)


def study_marked_read(study_pk: int) -> None:
    try:
        queue_notifications("read", study_pk=study_pk)
    except Exception:
        log.exception("hl7 study_marked_read failed study_pk=%s", study_pk)


def mpps_completed(performed_pk: int) -> None:
    try:
        performed = PerformedStep.objects.filter(pk=performed_pk).select_related("step").first()
        if performed is None:
            return
        study = Study.objects.filter(study_instance_uid=performed.study_instance_uid).first() \
            if performed.study_instance_uid else None
        if study is None and performed.step is None:
            return
        queue_notifications("mpps", study_pk=study.pk if study else None,
                            step_pk=performed.step.pk if performed.step else None)
    except Exception:
        log.exception("hl7 mpps_completed failed performed_pk=%s", performed_pk)
