"""Modality Performed Procedure Step SCP (PS3.4 F.7): N-CREATE and N-SET.

A modality creates the performed step IN PROGRESS (N-CREATE) and ends it COMPLETED or
DISCONTINUED (N-SET). The scheduled step it names (Scheduled Step Attributes Sequence:
Study Instance UID, Scheduled Procedure Step ID, Accession Number) follows, and the study, when
its images are here, is linked to it. A step that is COMPLETED or DISCONTINUED may no longer be
changed (0x0110 with Error ID 0xA710). Who may send MPPS: whoever may store (policy.may_store).

The engine (net/acceptor.py) dispatches any command by (Command Field, SOP class); N-SET names
its SOP class in Requested SOP Class UID, which Message.service_sop_class reads. The responses
are encoded here: N- responses carry the Affected SOP Class/Instance UID of the request's
Requested ones.
"""

import logging

from django.db import transaction
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from audit.journal import Action, Outcome, record

from . import policy
from .net import commands, status
from .net.acceptor import AcceptedAssociation, Message
from .qr import UNCOMPRESSED

log = logging.getLogger(__name__)

N_SET_RQ, N_SET_RSP = 0x0120, 0x8120  # PS3.7 E.1
N_CREATE_RQ, N_CREATE_RSP = 0x0140, 0x8140
REQUESTED_SOP_INSTANCE_UID = 0x1001
# PS3.7 C.4 and PS3.4 F.7.2
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
DUPLICATE_SOP_INSTANCE = 0x0111
INVALID_ATTRIBUTE_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
MAY_NO_LONGER_BE_UPDATED = 0xA710  # Error ID with PROCESSING_FAILURE

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"
FINAL = {COMPLETED, DISCONTINUED}
MPPS_UID = str(ModalityPerformedProcedureStep)


class Refused(Exception):
    def __init__(self, code: int, reason: str, error_id: int | None = None):
        super().__init__(reason)
        self.status, self.reason, self.error_id = code, reason, error_id


def contexts() -> list[PresentationContext]:
    return [build_context(ModalityPerformedProcedureStep, UNCOMPRESSED)]


def _respond(assoc: AcceptedAssociation, message: Message, field: int, code: int, sop_instance: str,
             reason: str | None = None, error_id: int | None = None) -> None:
    command = commands.encode({
        commands.AFFECTED_SOP_CLASS_UID: MPPS_UID,
        commands.COMMAND_FIELD: field,
        commands.MESSAGE_ID_BEING_RESPONDED_TO: message.message_id,
        commands.COMMAND_DATA_SET_TYPE: commands.NO_DATA_SET,
        commands.STATUS: code,
        commands.AFFECTED_SOP_INSTANCE_UID: sop_instance or None,
        commands.ERROR_COMMENT: reason[:64] if reason else None,
        commands.ERROR_ID: error_id,
    })
    assoc.connection.send_message(message.context.context_id, command, None)
    message.answered = True


def _references(ds: Dataset) -> list[dict]:
    refs = []
    for item in ds.get("ScheduledStepAttributesSequence", []) or []:
        refs.append({"study_uid": str(item.get("StudyInstanceUID", "") or ""),
                     "step_id": str(item.get("ScheduledProcedureStepID", "") or ""),
                     "accession": str(item.get("AccessionNumber", "") or "")})
    return refs


def scheduled_step_for(refs: list[dict]):
    """The worklist entry a performed step names, if any."""
    from hl7.models import ScheduledStep

    for ref in refs:
        steps = ScheduledStep.objects.all()
        if ref["study_uid"]:
            steps = steps.filter(study_instance_uid=ref["study_uid"])
        elif ref["accession"]:
            steps = steps.filter(accession_number=ref["accession"])
        else:
            continue
        if ref["step_id"]:
            steps = steps.filter(step_id=ref["step_id"])
        step = steps.order_by("-pk").first()
        if step is not None:
            return step
    return None


def _apply_state(performed, state: str) -> None:
    """The scheduled step and the study follow the performed step."""
    from hl7.models import ScheduledStep
    from pacsone.models import Study

    step = performed.step
    if step is None:
        return
    step.state = {IN_PROGRESS: ScheduledStep.State.IN_PROGRESS, COMPLETED: ScheduledStep.State.COMPLETED,
                  DISCONTINUED: ScheduledStep.State.DISCONTINUED}[state]
    if step.study_id is None:
        step.study = Study.objects.filter(study_instance_uid=performed.study_instance_uid or step.study_instance_uid).first()
    step.save(update_fields=["state", "study", "updated_at"])


def _create(assoc: AcceptedAssociation, sop_instance: str, ds: Dataset):
    from hl7.models import PerformedStep

    state = str(ds.get("PerformedProcedureStepStatus", "") or "").strip()
    if state != IN_PROGRESS:
        raise Refused(INVALID_ATTRIBUTE_VALUE, f"an MPPS is created IN PROGRESS, not {state or 'empty'}")
    if PerformedStep.objects.filter(sop_instance_uid=sop_instance).exists():
        raise Refused(DUPLICATE_SOP_INSTANCE, "this MPPS instance exists already")
    refs = _references(ds)
    step = scheduled_step_for(refs)
    first = refs[0] if refs else {"study_uid": "", "accession": ""}
    with transaction.atomic():
        performed = PerformedStep.objects.create(
            sop_instance_uid=sop_instance, state=state, step=step, modality=str(ds.get("Modality", "") or "")[:16],
            station_ae_title=str(ds.get("PerformedStationAETitle", "") or "")[:16],
            calling_ae_title=assoc.requestor.ae_title[:16], accession_number=first["accession"][:64],
            study_instance_uid=first["study_uid"][:64], attributes=ds.to_json_dict())
        _apply_state(performed, state)
        _journal(assoc, performed, "created")
    return performed


def _set(assoc: AcceptedAssociation, sop_instance: str, changes: Dataset):
    from hl7.models import PerformedStep

    with transaction.atomic():
        performed = PerformedStep.objects.select_for_update().filter(sop_instance_uid=sop_instance).first()
        if performed is None:
            raise Refused(NO_SUCH_OBJECT_INSTANCE, "no such MPPS instance")
        if performed.state in FINAL:
            raise Refused(PROCESSING_FAILURE, f"the MPPS is {performed.state} and may no longer be updated",
                          MAY_NO_LONGER_BE_UPDATED)
        ds = Dataset.from_json(performed.attributes)
        for element in changes:
            ds[element.tag] = element
        state = str(ds.get("PerformedProcedureStepStatus", "") or "").strip()
        if state not in (IN_PROGRESS, COMPLETED, DISCONTINUED):
            raise Refused(INVALID_ATTRIBUTE_VALUE, f"Performed Procedure Step Status {state or 'empty'} is not valid")
        performed.state = state
        performed.attributes = ds.to_json_dict()
        performed.save(update_fields=["state", "attributes", "updated_at"])
        _apply_state(performed, state)
        _journal(assoc, performed, f"set {state}")
        if state == COMPLETED:
            from hl7 import events

            transaction.on_commit(lambda: events.mpps_completed(performed.pk))
    return performed


def _journal(assoc: AcceptedAssociation, performed, what: str) -> None:
    step = performed.step
    record(Action.MODIFY, ae_title=assoc.requestor.ae_title, address=assoc.requestor.address,
           patient_id=step.patient_id if step else "", study_uid=performed.study_instance_uid,
           target=f"MPPS {performed.sop_instance_uid}"[:255],
           detail=f"{what}: state {performed.state}; worklist step {step.pk if step else 'none matched'}")


def _handle(assoc: AcceptedAssociation, message: Message, field: int, sop_instance: str, action) -> None:
    decision = policy.may_store(policy.caller_of(assoc))
    if not decision.allowed:
        record(Action.MODIFY, ae_title=assoc.requestor.ae_title, address=assoc.requestor.address,
               target=f"MPPS {sop_instance}"[:255], outcome=Outcome.DENIED, detail=f"refused (0x0124): {decision.reason}")
        _respond(assoc, message, field, status.NOT_AUTHORIZED, sop_instance, decision.reason)
        return
    try:
        try:
            ds = message.identifier()
        except Exception as error:
            raise Refused(PROCESSING_FAILURE, f"unreadable data set: {error}") from None
        action(assoc, sop_instance, ds)
    except Refused as refused:
        log.warning("mpps refused calling_ae=%s uid=%s status=0x%04x reason=%s", assoc.requestor.ae_title,
                    sop_instance, refused.status, refused.reason)
        _respond(assoc, message, field, refused.status, sop_instance, refused.reason, refused.error_id)
        return
    _respond(assoc, message, field, status.SUCCESS, sop_instance)


def handle_n_create(assoc: AcceptedAssociation, message: Message) -> None:
    sop_instance = message.command.get(commands.AFFECTED_SOP_INSTANCE_UID) or generate_uid()
    _handle(assoc, message, N_CREATE_RSP, sop_instance, _create)


def handle_n_set(assoc: AcceptedAssociation, message: Message) -> None:
    sop_instance = message.command.get(REQUESTED_SOP_INSTANCE_UID) or ""
    if not sop_instance:
        _respond(assoc, message, N_SET_RSP, MISSING_ATTRIBUTE, "", "N-SET without Requested SOP Instance UID")
        return
    _handle(assoc, message, N_SET_RSP, sop_instance, _set)


SERVICES = {
    (N_CREATE_RQ, MPPS_UID): handle_n_create,
    (N_SET_RQ, MPPS_UID): handle_n_set,
}
