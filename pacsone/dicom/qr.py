"""Query/Retrieve SCP: C-FIND, C-MOVE and C-GET, Patient Root and Study Root.

Services of the SCP's engine (acceptor.py), each called with the association and the request:
- C-FIND sends one Pending answer at a time and looks for a C-CANCEL between answers;
- C-MOVE refuses an unregistered destination with 0xA801 before anything else, then opens an
  association to the destination and sends each instance (sending.py), with a Pending response
  and the counts after each;
- C-GET sends each instance as a C-STORE on the requestor's own association.
An identifier we cannot run is refused before any sub-operation with the status C-FIND would give
it (0xA900 for a level or model mismatch, 0xC000 for a value we cannot match) and a reason.
Every request is journaled once, with what was asked, who asked and how it ended.

Who may ask, and what they reach, is policy.py's decision: a caller that may not query gets
0x0124 (Refused: Not Authorized) with the reason as Error Comment, before anything is read; an AE
linked to a user or group matches and retrieves only within the studies they may see, at every
level (a study outside them answers as if it did not exist).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from audit.journal import Action, Outcome, record

from .. import storage
from ..humanize import count as plural
from . import policy, query, registry
from .net import commands, sending, status, wire
from .net.acceptor import AcceptedAssociation, AssociationEnded, Message
from .net.requestor import AssociationRefused, StoreAssociation

log = logging.getLogger(__name__)

FIND_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelFind: query.STUDY_ROOT,
}
MOVE_MODELS = {
    PatientRootQueryRetrieveInformationModelMove: query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelMove: query.STUDY_ROOT,
}
GET_MODELS = {
    PatientRootQueryRetrieveInformationModelGet: query.PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelGet: query.STUDY_ROOT,
}
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
MAX_CONTEXTS = 128  # PS3.8: at most 128 presentation contexts in one association
MAX_SUB_OPERATIONS = 65535  # the counts are US
UNABLE_TO_PERFORM_SUB_OPERATIONS = 0xA702
SUB_OPERATIONS_WITH_FAILURES = 0xB000


class Refused(Exception):
    """A C-MOVE/C-GET we will not run, with the status to answer."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.status = code
        self.reason = reason


@dataclass
class Peer:
    ae_title: str
    address: str

    @classmethod
    def of(cls, assoc: AcceptedAssociation) -> "Peer":
        return cls(assoc.requestor.ae_title, assoc.requestor.address)


def query_retrieve_contexts() -> list[PresentationContext]:
    """The contexts our SCP accepts for C-FIND, C-MOVE and C-GET."""
    return [build_context(uid, UNCOMPRESSED) for uid in (*FIND_MODELS, *MOVE_MODELS, *GET_MODELS)]


def allow_get_role(contexts: list[PresentationContext]) -> None:
    """A C-GET requestor proposes to be the Storage SCP on its storage contexts; accept that
    role (a peer that proposes no roles keeps the default ones)."""
    for context in contexts:
        context.scu_role = True
        context.scp_role = True


def _access(assoc: AcceptedAssociation) -> policy.Decision:
    return policy.may_query(policy.caller_of(assoc))


def _journal_refusal(action, peer: Peer, target: str, decision: policy.Decision) -> None:
    record(action, ae_title=peer.ae_title, address=peer.address, target=target, outcome=Outcome.DENIED,
           detail=f"refused (0x0124): {decision.reason}")


def _identifier(message: Message) -> Dataset:
    try:
        return message.identifier()
    except Exception as error:
        raise query.QueryError(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, f"unreadable identifier: {error}") from None


# --- C-FIND -------------------------------------------------------------------------------------------


def handle_find(assoc: AcceptedAssociation, message: Message) -> None:
    peer = Peer.of(assoc)
    model = FIND_MODELS.get(message.sop_class)
    target = f"C-FIND {model} root"

    def answer(code: int, dataset: bytes | None = None, reason: str | None = None) -> None:
        assoc.send_response(message, commands.C_FIND_RSP, code, dataset,
                            error_comment=reason[:64] if reason else None)

    def journal(asked: str, result: str, outcome=Outcome.SUCCESS) -> None:
        """Once the peer has its answer: the entry's commit is not the peer's wait."""
        assoc.after_reply(lambda: _journal_find(peer, target, asked, result, outcome))

    access = _access(assoc)
    if not access.allowed:
        _journal_refusal(Action.QUERY, peer, target, access)
        answer(status.NOT_AUTHORIZED, reason=access.reason)
        return
    syntax = message.context.transfer_syntax
    count = 0
    try:
        if model is None:
            raise query.QueryError(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "not a C-FIND information model")
        found, answers = _encoded_answers(_identifier(message), model, assoc.ae_title, syntax, access.studies)
        target = f"C-FIND {model} root {found.level}"
        for encoded in answers:
            if assoc.is_cancelled(message):
                answer(status.CANCEL)
                journal(found.describe(), f"cancelled after {plural(count, 'answer', 'answers')}")
                return
            count += 1
            answer(status.PENDING, encoded)
    except query.QueryError as error:
        answer(error.status, reason=error.reason)
        journal(error.reason, "refused", Outcome.FAILURE)
        return
    except (AssociationEnded, wire.ConnectionClosed, OSError):
        _journal_find(peer, target, "", f"association ended after {plural(count, 'answer', 'answers')}", Outcome.FAILURE)
        raise
    except Exception as error:  # a database failure must not take the association down
        log.exception("c-find failed calling_ae=%s", peer.ae_title)
        _journal_find(peer, target, str(error), "failed", Outcome.FAILURE)
        answer(status.UNABLE_TO_PROCESS, reason=f"query failed: {error}")
        return
    answer(status.SUCCESS)
    journal(found.describe(), plural(count, 'answer', 'answers'))


def _encoded_answers(identifier: Dataset, model: str, retrieve_ae_title: str, syntax, studies=None):
    """(Query, iterator of encoded answers) in the request's transfer syntax: built straight as
    bytes for the little endian syntaxes, through pydicom for the others. `studies`: the studies
    the caller may reach (None: all)."""
    if syntax.is_little_endian and not syntax.is_deflated:
        return query.find_encoded(identifier, model, retrieve_ae_title, explicit_vr=not syntax.is_implicit_VR,
                                  studies=studies)
    found, answers = query.find(identifier, model, retrieve_ae_title=retrieve_ae_title, studies=studies)
    return found, (encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated) for ds in answers)


def _journal_find(peer: Peer, target: str, asked: str, result: str, outcome=Outcome.SUCCESS) -> None:
    record(Action.QUERY, ae_title=peer.ae_title, address=peer.address, target=target, outcome=outcome,
           detail=f"{asked}; {result}")


# --- C-MOVE and C-GET: the instances to send ----------------------------------------------------------


def _matched(message: Message, models: dict, studies=None) -> tuple[query.Query, list]:
    """The instances a C-MOVE/C-GET asks for (within `studies` when given), with their study keys;
    refuses what it cannot run."""
    model = models.get(message.sop_class)
    try:
        if model is None:
            raise query.QueryError(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "not a retrieve information model")
        found, instances = query.instances_for(_identifier(message), model, studies=studies)
        fields = ("pk", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "file_path",
                  "storage_location_id", "series__study__study_instance_uid", "series__study__patient__patient_id",
                  "series__study__patient_id")
        rows = list(query.time_limited_answers(instances.values(*fields)))
        from hl7.coercion import add_coercions  # demographics changed by HL7 go out with the instances

        add_coercions(rows)
    except query.QueryError as error:
        raise Refused(error.status, error.reason) from None
    except Exception as error:  # a database failure
        log.exception("retrieve: cannot run the identifier")
        raise Refused(status.UNABLE_TO_PROCESS, f"cannot run the request: {error}") from None
    if len(rows) > MAX_SUB_OPERATIONS:
        raise Refused(status.UNABLE_TO_PROCESS, f"{len(rows)} instances match; at most {MAX_SUB_OPERATIONS} per request")
    return found, rows


def _allowed_and_matched(message: Message, models: dict, action, peer: Peer,
                         target: str, access: policy.Decision) -> tuple[query.Query, list]:
    """The instances of a C-MOVE/C-GET the peer may have; a refusal is journaled and raised."""
    if not access.allowed:
        _journal_refusal(action, peer, target, access)
        raise Refused(status.NOT_AUTHORIZED, access.reason)
    try:
        return _matched(message, models, access.studies)
    except Refused as refused:
        record(action, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.FAILURE, detail=refused.reason)
        raise


def storage_contexts(rows: list[dict]) -> list[PresentationContext]:
    """What to propose to a move destination: each SOP class uncompressed (so that anything can
    be sent decompressed) and in each stored compressed syntax (sent as stored when accepted)."""
    sop_classes = sorted({row["sop_class_uid"] for row in rows})
    contexts = [build_context(sop_class, UNCOMPRESSED) for sop_class in sop_classes]
    pairs = sorted({(row["sop_class_uid"], row["transfer_syntax_uid"]) for row in rows})
    for sop_class, syntax in pairs:
        if syntax not in UNCOMPRESSED and len(contexts) < MAX_CONTEXTS:
            contexts.append(build_context(sop_class, syntax))
    return contexts[:MAX_CONTEXTS]


def instance_of(row: dict) -> sending.Instance:
    return sending.Instance(storage.opener(row["storage_location_id"], row["file_path"]), row["sop_class_uid"],
                            row["sop_instance_uid"], row["transfer_syntax_uid"], name=row["sop_instance_uid"],
                            coerce=row.get("coerce"))


def send_one(channel, row: dict, message_id: int, as_scu: bool, move_originator=None) -> int:
    """One sub-operation: the peer's status, or a failure of ours (unreadable, unconvertible)."""
    try:
        return sending.send_instance(channel, instance_of(row), message_id, as_scu, move_originator)
    except sending.Unsendable as error:
        log.warning("retrieve: cannot send %s: %s", row["sop_instance_uid"], error)
        return status.UNABLE_TO_PROCESS


class RetrieveJournal:
    """The one journal entry per study of a C-MOVE/C-GET, written when it ends whichever way:
    completed, cancelled, or cut short (destination unreachable, association ended)."""

    def __init__(self, action, peer: Peer, target: str, rows: list[dict]):
        self.action, self.peer, self.target, self.rows = action, peer, target, rows
        self.tally = sending.Tally(len(rows))
        self.written = False
        self.deferred = False  # finish() will run once the peer has its final answer

    def finish_after_reply(self, assoc: AcceptedAssociation, how: str = "") -> None:
        self.deferred = True
        assoc.after_reply(lambda: self.finish(how))

    def finish_if_cut_short(self) -> None:
        if not self.deferred:
            self.finish("stopped early")

    def finish(self, how: str = "") -> None:
        if self.written:
            return
        self.written = True
        tally = self.tally
        complete = tally.completed + tally.warning == tally.total and not how
        detail = (f"{how}; " if how else "") + tally.summary()
        studies = {(r["series__study__study_instance_uid"], r["series__study__patient__patient_id"]) for r in self.rows}
        for study_uid, patient_id in sorted(studies) or [("", "")]:
            record(self.action, ae_title=self.peer.ae_title, address=self.peer.address, target=self.target,
                   study_uid=study_uid, patient_id=patient_id, detail=detail,
                   outcome=Outcome.SUCCESS if complete else Outcome.FAILURE)


def _retrieve_response(assoc: AcceptedAssociation, message: Message, field: int, code: int,
                       tally: sending.Tally | None = None, reason: str | None = None, final: bool = True) -> None:
    """A C-MOVE/C-GET response: counts (Remaining only while pending or cancelled) and, when a
    final response reports failures, the Failed SOP Instance UID List."""
    dataset = None
    counts = {}
    if tally is not None:
        counts = {"completed": tally.completed, "failed": tally.failed, "warning": tally.warning}
        if not final or code == status.CANCEL:
            counts["remaining"] = tally.remaining
        if final and tally.failed_uids and code != status.SUCCESS:
            failed = Dataset()
            failed.FailedSOPInstanceUIDList = tally.failed_uids
            syntax = message.context.transfer_syntax
            dataset = encode(failed, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    assoc.send_response(message, field, code, dataset, error_comment=reason[:64] if reason else None, **counts)


def _final_status(tally: sending.Tally) -> int:
    if not tally.failed and not tally.warning:
        return status.SUCCESS
    if tally.failed == tally.total:
        return UNABLE_TO_PERFORM_SUB_OPERATIONS
    return SUB_OPERATIONS_WITH_FAILURES


def _send_all(assoc: AcceptedAssociation, message: Message, field: int, channel, rows: list[dict],
              journal: RetrieveJournal, as_scu: bool, move_originator=None) -> None:
    """Each instance as a sub-operation, a Pending response after each, C-CANCEL honoured
    between them; then the final response."""
    tally = journal.tally
    next_id = 1
    for row in rows:
        if assoc.is_cancelled(message):
            _retrieve_response(assoc, message, field, status.CANCEL, tally)
            journal.finish_after_reply(assoc, "cancelled")
            return
        tally.count(send_one(channel, row, next_id, as_scu, move_originator), row["sop_instance_uid"])
        next_id = next_id % 0xFFFF + 1
        _retrieve_response(assoc, message, field, status.PENDING, tally, final=False)
    _retrieve_response(assoc, message, field, _final_status(tally), tally)
    journal.finish_after_reply(assoc)


# --- C-MOVE -------------------------------------------------------------------------------------------


def handle_move(assoc: AcceptedAssociation, message: Message) -> None:
    peer = Peer.of(assoc)
    destination_ae = str(message.command.get(commands.MOVE_DESTINATION, ""))
    target = f"C-MOVE to {destination_ae}"
    access = _access(assoc)
    if not access.allowed:  # before the destination check: a stranger learns nothing about our AEs
        _journal_refusal(Action.MOVE, peer, target, access)
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, status.NOT_AUTHORIZED, reason=access.reason)
        return
    destination = registry.move_destination(destination_ae)
    if destination is None:
        record(Action.MOVE, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.FAILURE, detail="move destination unknown (0xA801)")
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, status.MOVE_DESTINATION_UNKNOWN,
                           reason=f"{destination_ae or 'no destination'} is not a registered move destination")
        return
    try:
        found, rows = _allowed_and_matched(message, MOVE_MODELS, Action.MOVE, peer, target, access)
    except Refused as refused:
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, refused.status, reason=refused.reason)
        return
    journal = RetrieveJournal(Action.MOVE, peer, f"{target} ({found.level})", rows)
    if not rows:
        journal.finish()
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, status.SUCCESS, journal.tally)
        return
    sub = StoreAssociation(destination.host, destination.port, assoc.ae_title, destination.ae_title,
                           storage_contexts(rows), settings.PACS_MAX_PDU)
    try:
        sub.open()
    except AssociationRefused as refused:
        log.warning("c-move: %s", refused)
        journal.finish("destination did not accept the association")
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, status.MOVE_DESTINATION_UNKNOWN,
                           reason=str(refused))
        return
    originator = (peer.ae_title, message.message_id)
    try:
        _send_all(assoc, message, commands.C_MOVE_RSP, sub, rows, journal, True, originator)
    except (AssociationRefused, wire.ProtocolError, OSError) as lost:
        log.warning("c-move to %s cut short: %s", destination_ae, lost)
        journal.finish(f"destination went away ({lost})")
        sub.abort()
        _retrieve_response(assoc, message, commands.C_MOVE_RSP, UNABLE_TO_PERFORM_SUB_OPERATIONS, journal.tally,
                           reason="the destination went away")
        return
    except BaseException:  # the requestor went away: so does the sub-association
        sub.abort()
        raise
    finally:
        journal.finish_if_cut_short()
    sub.release()


# --- C-GET --------------------------------------------------------------------------------------------


def handle_get(assoc: AcceptedAssociation, message: Message) -> None:
    peer = Peer.of(assoc)
    target = "C-GET"
    try:
        found, rows = _allowed_and_matched(message, GET_MODELS, Action.RETRIEVE, peer, target, _access(assoc))
    except Refused as refused:
        _retrieve_response(assoc, message, commands.C_GET_RSP, refused.status, reason=refused.reason)
        return
    journal = RetrieveJournal(Action.RETRIEVE, peer, f"{target} ({found.level})", rows)
    try:
        _send_all(assoc, message, commands.C_GET_RSP, assoc, rows, journal, True)
    finally:
        journal.finish_if_cut_short()


# (Command Field, SOP Class UID) -> service, one entry per information model.
SERVICES = {
    **{(commands.C_FIND_RQ, str(uid)): handle_find for uid in FIND_MODELS},
    **{(commands.C_MOVE_RQ, str(uid)): handle_move for uid in MOVE_MODELS},
    **{(commands.C_GET_RQ, str(uid)): handle_get for uid in GET_MODELS},
}
