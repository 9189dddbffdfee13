"""Storage Commitment Push Model (PS3.4 Annex J, SOP Class 1.2.840.10008.1.20.1), both roles.

As SCP (a modality asks us to commit what it sent): N-ACTION "Request Storage Commitment" names
a Transaction UID and the instances (Referenced SOP Sequence). We answer the N-ACTION at once,
check each instance is indexed under that SOP class and its file is in storage, and send the
result as an N-EVENT-REPORT: on the same association when the requestor keeps it open (it sent
nothing more within SAME_ASSOCIATION_GRACE_SECONDS), else on an association we open to the
requestor's registered address, as a job of the job layer (`report_job`: retried when the
requestor is down). Failures carry 0x0112 (no such object instance) or 0x0119 (class/instance
conflict). Who may ask: whoever may store (policy.may_store). Journaled (Store).

As SCU (after routing; routing/commitment.py keeps the records): `request()` opens an
association proposing only this SOP class (a destination that does not accept it does not
support commitment), sends the N-ACTION and waits a while for the N-EVENT-REPORT on it; a
report that comes later, on an association the destination opens to our SCP, reaches
`handle_n_event_report`, matched by its Transaction UID (routing.commitment.take_report).
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext, build_context, build_role

from audit.journal import Action, Outcome, record

from .. import storage
from ..models import Instance, RemoteAE
from . import policy
from .net import commands, status
from .net.acceptor import AcceptedAssociation, AssociationEnded, Message
from .net.requestor import AssociationRefused, NoContextAccepted, StoreAssociation
from .qr import UNCOMPRESSED

log = logging.getLogger(__name__)

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"  # the SOP Instance every request and report names
REQUEST_COMMITMENT = 1  # Action Type ID
ALL_COMMITTED, SOME_FAILED = 1, 2  # Event Type IDs
# Failure Reasons (PS3.4 J.3.2.1.2) and N- statuses (PS3.7 C.4)
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
NO_SUCH_ACTION = 0x0123
CLASS_INSTANCE_CONFLICT = 0x0119
INVALID_ARGUMENT = 0x0115
FAILURE_REASONS = {
    PROCESSING_FAILURE: "processing failure",
    NO_SUCH_OBJECT_INSTANCE: "no such object instance",
    CLASS_INSTANCE_CONFLICT: "SOP class does not match the instance",
    0x0122: "SOP class not supported",
    0x0131: "duplicate transaction UID",
    0xA770: "resource limitation",
    0xA771: "referenced SOP class not supported",
}
MAX_REFERENCES = 20000  # instances one request may name (a request's data set is capped at 1 MB anyway)
SAME_ASSOCIATION_GRACE_SECONDS = 0.5  # a requestor that releases at once gets its report on a new association
CHECK_BATCH = 500


class CommitmentError(Exception):
    """A request or report that cannot be read, made or delivered; `transient` when worth a retry."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.transient = transient


class NotSupported(CommitmentError):
    """The peer did not accept the Storage Commitment Push Model SOP class."""


@dataclass(frozen=True)
class Reference:
    sop_class: str
    sop_instance: str


@dataclass
class Result:
    """A commitment's outcome, as an N-EVENT-REPORT carries it."""

    transaction_uid: str
    committed: list[Reference] = field(default_factory=list)
    failed: list[tuple[Reference, int]] = field(default_factory=list)  # with a Failure Reason

    def summary(self) -> str:
        return f"{len(self.committed)} committed, {len(self.failed)} failed"


def failure_text(reason: int) -> str:
    return f"{FAILURE_REASONS.get(reason, 'failed')} (0x{reason:04X})"


def contexts() -> list[PresentationContext]:
    """Our SCP's context: a requestor may be the SCU (it asks us to commit) or, by role
    selection, the SCP (a destination reporting a commitment we asked for)."""
    context = build_context(STORAGE_COMMITMENT, UNCOMPRESSED)
    context.scu_role = context.scp_role = True
    return [context]


# --- Data sets ----------------------------------------------------------------------------------


def _references(items) -> list[Reference]:
    return [Reference(str(item.get("ReferencedSOPClassUID", "") or ""), str(item.get("ReferencedSOPInstanceUID", "") or ""))
            for item in items or []]


def read_request(ds: Dataset) -> tuple[str, list[Reference]]:
    """(Transaction UID, references) of an N-ACTION's data set; CommitmentError when unusable."""
    uid = str(ds.get("TransactionUID", "") or "").strip()
    references = _references(ds.get("ReferencedSOPSequence"))
    if not uid:
        raise CommitmentError("the request has no Transaction UID")
    if not references:
        raise CommitmentError("the request names no instance (Referenced SOP Sequence)")
    if len(references) > MAX_REFERENCES:
        raise CommitmentError(f"the request names {len(references)} instances, more than the {MAX_REFERENCES} allowed")
    return uid, references


def read_result(ds: Dataset) -> Result:
    uid = str(ds.get("TransactionUID", "") or "").strip()
    if not uid:
        raise CommitmentError("the report has no Transaction UID")
    failed = [(Reference(str(item.get("ReferencedSOPClassUID", "") or ""),
                         str(item.get("ReferencedSOPInstanceUID", "") or "")), int(item.get("FailureReason", PROCESSING_FAILURE)))
              for item in ds.get("FailedSOPSequence") or []]
    return Result(uid, _references(ds.get("ReferencedSOPSequence")), failed)


def _item(reference: Reference, reason: int | None = None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = reference.sop_class
    item.ReferencedSOPInstanceUID = reference.sop_instance
    if reason is not None:
        item.FailureReason = reason
    return item


def request_dataset(transaction_uid: str, references: list[Reference]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    ds.ReferencedSOPSequence = [_item(reference) for reference in references]
    return ds


def result_dataset(result: Result) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = result.transaction_uid
    ds.RetrieveAETitle = settings.PACS_AE_TITLE
    if result.committed:
        ds.ReferencedSOPSequence = [_item(reference) for reference in result.committed]
    if result.failed:
        ds.FailedSOPSequence = [_item(reference, reason) for reference, reason in result.failed]
    return ds


def _encoded(ds: Dataset, transfer_syntax) -> bytes:
    return encode(ds, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)


def _report_command(message_id: int, result: Result) -> bytes:
    return commands.encode({
        commands.AFFECTED_SOP_CLASS_UID: STORAGE_COMMITMENT,
        commands.COMMAND_FIELD: commands.N_EVENT_REPORT_RQ,
        commands.MESSAGE_ID: message_id,
        commands.COMMAND_DATA_SET_TYPE: commands.HAS_DATA_SET,
        commands.AFFECTED_SOP_INSTANCE_UID: WELL_KNOWN_INSTANCE,
        commands.EVENT_TYPE_ID: SOME_FAILED if result.failed else ALL_COMMITTED,
    })


def _action_command(message_id: int) -> bytes:
    return commands.encode({
        commands.REQUESTED_SOP_CLASS_UID: STORAGE_COMMITMENT,
        commands.COMMAND_FIELD: commands.N_ACTION_RQ,
        commands.MESSAGE_ID: message_id,
        commands.COMMAND_DATA_SET_TYPE: commands.HAS_DATA_SET,
        commands.REQUESTED_SOP_INSTANCE_UID: WELL_KNOWN_INSTANCE,
        commands.ACTION_TYPE_ID: REQUEST_COMMITMENT,
    })


def _respond(channel, message: Message, field: int, code: int, reason: str | None = None,
             event_type_id: int | None = None, action_type_id: int | None = None) -> None:
    command = commands.encode({
        commands.AFFECTED_SOP_CLASS_UID: STORAGE_COMMITMENT,
        commands.COMMAND_FIELD: field,
        commands.MESSAGE_ID_BEING_RESPONDED_TO: message.message_id,
        commands.COMMAND_DATA_SET_TYPE: commands.NO_DATA_SET,
        commands.STATUS: code,
        commands.AFFECTED_SOP_INSTANCE_UID: WELL_KNOWN_INSTANCE,
        commands.ERROR_COMMENT: reason[:64] if reason else None,
        commands.EVENT_TYPE_ID: event_type_id,
        commands.ACTION_TYPE_ID: action_type_id,
    })
    channel.connection.send_message(message.context.context_id, command, None)
    message.answered = True


# --- As SCP: checking what a modality asks us to commit ---------------------------------------


def check(transaction_uid: str, references: list[Reference]) -> Result:
    """Each referenced instance is committed when it is indexed under that SOP class and its
    file is in storage; else failed with 0x0112 (not here) or 0x0119 (another SOP class)."""
    result = Result(transaction_uid)
    for start in range(0, len(references), CHECK_BATCH):
        batch = references[start:start + CHECK_BATCH]
        stored = {instance.sop_instance_uid: instance for instance in
                  Instance.objects.filter(sop_instance_uid__in=[r.sop_instance for r in batch])}
        for reference in batch:
            instance = stored.get(reference.sop_instance)
            if instance is None or not storage.stored_exists(instance):
                result.failed.append((reference, NO_SUCH_OBJECT_INSTANCE))
            elif instance.sop_class_uid != reference.sop_class:
                result.failed.append((reference, CLASS_INSTANCE_CONFLICT))
            else:
                result.committed.append(reference)
    return result


def _journal_answer(ae_title: str, address: str, result: Result, how: str, outcome=Outcome.SUCCESS) -> None:
    failures = "; ".join(f"{ref.sop_instance}: {failure_text(reason)}" for ref, reason in result.failed[:10])
    record(Action.STORE, username="dicom", ae_title=ae_title, address=address, outcome=outcome,
           target=f"storage commitment {result.transaction_uid}"[:255],
           detail=f"{result.summary()} ({how})" + (f"; {failures}" if failures else ""))


def handle_n_action(assoc: AcceptedAssociation, message: Message) -> None:
    caller = policy.caller_of(assoc)
    requestor = assoc.requestor
    if message.command.get(commands.ACTION_TYPE_ID) != REQUEST_COMMITMENT:
        _respond(assoc, message, commands.N_ACTION_RSP, NO_SUCH_ACTION, "only Request Storage Commitment (1)")
        return
    decision = policy.may_store(caller)
    if not decision.allowed:
        record(Action.STORE, username="dicom", ae_title=requestor.ae_title, address=requestor.address,
               target="storage commitment request", outcome=Outcome.DENIED, detail=f"refused (0x0124): {decision.reason}")
        _respond(assoc, message, commands.N_ACTION_RSP, status.NOT_AUTHORIZED, decision.reason)
        return
    try:
        transaction_uid, references = read_request(message.identifier())
    except Exception as error:
        _respond(assoc, message, commands.N_ACTION_RSP, INVALID_ARGUMENT, f"unusable request: {error}")
        return
    _respond(assoc, message, commands.N_ACTION_RSP, status.SUCCESS, action_type_id=REQUEST_COMMITMENT)
    result = check(transaction_uid, references)
    log.info("storage commitment asked calling_ae=%s uid=%s %s", requestor.ae_title, transaction_uid, result.summary())
    if assoc.connection.has_pending_input(wait=SAME_ASSOCIATION_GRACE_SECONDS):
        # It released, or asked something else: it is not waiting for the report here. Queued
        # before a release is answered, so that a crash in between loses no report.
        queue_report(requestor.ae_title, transaction_uid, references)
        _journal_answer(requestor.ae_title, requestor.address, result, "report queued for a new association")
        if assoc.release_if_asked():
            raise AssociationEnded("released before its storage commitment report")
        return
    if _report_here(assoc, message, result):
        _journal_answer(requestor.ae_title, requestor.address, result, "reported on the same association")
        return
    queue_report(requestor.ae_title, transaction_uid, references)
    _journal_answer(requestor.ae_title, requestor.address, result, "report queued for a new association")
    raise AssociationEnded("released before its storage commitment report")


def _report_here(assoc: AcceptedAssociation, message: Message, result: Result) -> bool:
    """Send the report on the requestor's own association; False when it asked to release
    instead of answering (answered: the association is over)."""
    message_id = assoc.extra["next_message_id"] = assoc.extra.get("next_message_id", 0) + 1
    assoc.connection.send_message(message.context.context_id, _report_command(message_id, result),
                                  _encoded(result_dataset(result), message.context.transfer_syntax))
    response = assoc.await_response(message_id, release_ends_wait=True)
    if response is None:
        return False
    code = response.command.get(commands.STATUS, 0xC000)
    if code != status.SUCCESS:
        log.warning("storage commitment report answered 0x%04x calling_ae=%s", code, assoc.requestor.ae_title)
    return True


def queue_report(ae_title: str, transaction_uid: str, references: list[Reference]):
    from routing.jobs import start_job
    from routing.models import Job

    return start_job(Job.Kind.COMMITMENT, f"Storage commitment report to {ae_title}"[:255], None,
                     "pacsone.dicom.commitment.report_job", ae_title, transaction_uid,
                     [[r.sop_class, r.sop_instance] for r in references])


def report_job(progress, ae_title: str, transaction_uid: str, references: list) -> str:
    """Send a commitment's report on an association we open to the requestor (checked again
    now: what was stored meanwhile is committed)."""
    from routing.jobs import PermanentError, TransientError

    remote = RemoteAE.objects.filter(ae_title=ae_title.strip()).first()
    if remote is None:
        raise PermanentError(f"{ae_title} is not in the remote AE registry: no address to send its report to")
    progress.start(1)
    result = check(transaction_uid, [Reference(sop_class, sop_instance) for sop_class, sop_instance in references])
    try:
        code = send_report(remote, result)
    except CommitmentError as error:
        raise (TransientError if error.transient else PermanentError)(str(error)) from None
    outcome = Outcome.SUCCESS if code == status.SUCCESS else Outcome.FAILURE
    _journal_answer(remote.ae_title, remote.host, result, f"reported on a new association, answered 0x{code:04X}",
                    outcome)
    if code != status.SUCCESS:
        raise PermanentError(f"{ae_title} answered the report with status 0x{code:04X}")
    progress.advance()
    return f"reported to {ae_title}: {result.summary()}"


def _open(remote: RemoteAE, as_reporter: bool) -> StoreAssociation:
    """An association proposing Storage Commitment only (as its SCP role when we report)."""
    roles = [build_role(STORAGE_COMMITMENT, scu_role=False, scp_role=True)] if as_reporter else []
    association = StoreAssociation(remote.host, remote.port, settings.PACS_AE_TITLE, remote.ae_title,
                                   [build_context(STORAGE_COMMITMENT, UNCOMPRESSED)], settings.PACS_MAX_PDU,
                                   timeout=30, roles=roles)
    try:
        association.open()
    except NoContextAccepted:
        raise NotSupported(f"{remote.ae_title} does not accept Storage Commitment") from None
    except AssociationRefused as refused:
        raise CommitmentError(str(refused), transient=True) from None
    return association


def send_report(remote: RemoteAE, result: Result) -> int:
    """N-EVENT-REPORT on a new association; the peer's status."""
    association = _open(remote, as_reporter=True)
    try:
        context = next(iter(association.contexts.values()))
        association.connection.send_message(context.context_id, _report_command(1, result),
                                            _encoded(result_dataset(result), context.transfer_syntax))
        return association.await_response(1).command.get(commands.STATUS, 0xC000)
    except (AssociationRefused, OSError) as error:
        raise CommitmentError(f"{remote.ae_title}: {error}", transient=True) from None
    finally:
        association.release()


# --- As SCU: asking a destination to commit -------------------------------------------------------


def request(remote: RemoteAE, transaction_uid: str, references: list[Reference], wait: float) -> Result | None:
    """N-ACTION to `remote`; the Result when its N-EVENT-REPORT came on this association within
    `wait` seconds, else None (it will come to our SCP). NotSupported when the destination did
    not accept the SOP class; CommitmentError otherwise."""
    association = _open(remote, as_reporter=False)
    try:
        context = next(iter(association.contexts.values()))
        association.connection.send_message(context.context_id, _action_command(1),
                                            _encoded(request_dataset(transaction_uid, references),
                                                     context.transfer_syntax))
        response = association.await_response(1)
        code = response.command.get(commands.STATUS, 0xC000)
        if code != status.SUCCESS:
            comment = response.command.get(commands.ERROR_COMMENT, "")
            raise CommitmentError(f"{remote.ae_title} refused the commitment request (0x{code:04X}) {comment}".strip(),
                                  transient=0xA700 <= code <= 0xA7FF)
        return _await_report(association, context, transaction_uid, wait) if wait > 0 else None
    except (AssociationRefused, OSError) as error:
        raise CommitmentError(f"{remote.ae_title}: {error}", transient=True) from None
    finally:
        association.release()


def _await_report(association: StoreAssociation, context, transaction_uid: str, wait: float) -> Result | None:
    try:
        message = association.next_message(wait=wait)
    except TimeoutError:
        return None
    if message.field != commands.N_EVENT_REPORT_RQ:
        return None
    try:
        result = read_result(message.identifier())
    except Exception as error:
        _respond(association, message, commands.N_EVENT_REPORT_RSP, PROCESSING_FAILURE, f"unreadable: {error}")
        return None
    code = status.SUCCESS if result.transaction_uid == transaction_uid else PROCESSING_FAILURE
    _respond(association, message, commands.N_EVENT_REPORT_RSP, code,
             None if code == status.SUCCESS else "unknown Transaction UID",
             event_type_id=message.command.get(commands.EVENT_TYPE_ID))
    return result if code == status.SUCCESS else None


def handle_n_event_report(assoc: AcceptedAssociation, message: Message) -> None:
    """A destination reports, on an association it opened to us, a commitment we asked for."""
    from routing.commitment import take_report

    requestor = assoc.requestor
    event_type = message.command.get(commands.EVENT_TYPE_ID)
    if not policy.may_associate(policy.caller_of(assoc)).allowed:
        _respond(assoc, message, commands.N_EVENT_REPORT_RSP, status.NOT_AUTHORIZED, "not allowed")
        return
    try:
        result = read_result(message.identifier())
    except Exception as error:
        _respond(assoc, message, commands.N_EVENT_REPORT_RSP, INVALID_ARGUMENT, f"unusable report: {error}")
        return
    problem = take_report(result, reported_by=requestor.ae_title, address=requestor.address)
    if problem:
        log.warning("storage commitment report refused calling_ae=%s uid=%s: %s", requestor.ae_title,
                    result.transaction_uid, problem)
        _respond(assoc, message, commands.N_EVENT_REPORT_RSP, NO_SUCH_OBJECT_INSTANCE, problem, event_type_id=event_type)
        return
    _respond(assoc, message, commands.N_EVENT_REPORT_RSP, status.SUCCESS, event_type_id=event_type)


SERVICES = {
    (commands.N_ACTION_RQ, STORAGE_COMMITMENT): handle_n_action,
    (commands.N_EVENT_REPORT_RQ, STORAGE_COMMITMENT): handle_n_event_report,
}
