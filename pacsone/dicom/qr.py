"""Query/Retrieve SCP: C-FIND, C-MOVE and C-GET, Patient Root and Study Root.

pynetdicom drives the protocol; our handlers are generators that it resumes between messages:
- C-FIND yields one Pending answer at a time, so a C-CANCEL stops the answers at once;
- C-MOVE yields the destination first (an unregistered one gets 0xA801 before anything else),
  then the number of instances, then each data set to send;
- C-GET yields the number of instances, then each data set to send on the same association.
An identifier we cannot run is refused before any sub-operation: C-FIND answers its status
with a reason; C-MOVE and C-GET raise, which pynetdicom answers with a Cxxx "unable to process".
Every request is journaled once, with what was asked, who asked and how it ended.
"""

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID
from pynetdicom import _config, evt
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

from . import query, registry, status

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
# send_c_store(path) streams the file's data set from disk (only StoredFile items are paths).
_config.STORE_SEND_CHUNKED_DATASET = True
# pynetdicom formats every request and response identifier for its log, whatever the level:
# a few percent of each C-FIND answer. We journal what was asked and how many answers went out.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False


class Refused(Exception):
    """A C-MOVE/C-GET we will not run; pynetdicom answers it with a Cxxx failure."""


@dataclass
class Peer:
    ae_title: str
    address: str

    @classmethod
    def of(cls, event) -> "Peer":
        requestor = event.assoc.requestor
        return cls(requestor.ae_title, requestor.address)


def query_retrieve_contexts() -> list[PresentationContext]:
    """The contexts our SCP accepts for C-FIND, C-MOVE and C-GET."""
    return [build_context(uid, UNCOMPRESSED) for uid in (*FIND_MODELS, *MOVE_MODELS, *GET_MODELS)]


def allow_get_role(contexts: list[PresentationContext]) -> None:
    """A C-GET requestor proposes to be the Storage SCP on its storage contexts; accept that
    role (a peer that proposes no roles keeps the default ones)."""
    for context in contexts:
        context.scu_role = True
        context.scp_role = True


def no_delay(event) -> None:
    """EVT_CONN_OPEN of associations we request: Nagle's algorithm would hold each small PDU
    back until the peer's delayed ACK (~40 ms per C-STORE sub-operation)."""
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _allowed(peer: Peer) -> bool:
    return settings.PACS_ACCEPT_CALLING_AE != "registered" or registry.may_query(peer.ae_title)


def _failure(code: int, reason: str) -> Dataset:
    rsp = Dataset()
    rsp.Status = code
    rsp.ErrorComment = reason[:64]
    return rsp


# --- C-FIND -------------------------------------------------------------------------------------------


def handle_find(event):
    peer = Peer.of(event)
    model = FIND_MODELS[event.request.AffectedSOPClassUID]
    target = f"C-FIND {model} root"
    if not _allowed(peer):
        record(Action.QUERY, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.DENIED, detail="calling AE may not query")
        yield _failure(status.NOT_AUTHORIZED, f"{peer.ae_title} may not query"), None
        return
    count = 0
    try:
        found, answers = query.find(event.identifier, model, retrieve_ae_title=event.assoc.acceptor.ae_title)
        target = f"C-FIND {model} root {found.level}"
        for answer in answers:
            if event.is_cancelled:
                _journal_find(peer, target, found.describe(), f"cancelled after {count} answer(s)")
                yield status.CANCEL, None
                return
            count += 1
            yield status.PENDING, answer
    except query.QueryError as error:
        _journal_find(peer, target, error.reason, "refused", Outcome.FAILURE)
        yield _failure(error.status, error.reason), None
        return
    except Exception as error:  # a database failure must not take the association down
        log.exception("c-find failed calling_ae=%s", peer.ae_title)
        _journal_find(peer, target, str(error), "failed", Outcome.FAILURE)
        yield _failure(status.UNABLE_TO_PROCESS, f"query failed: {error}"), None
        return
    _journal_find(peer, target, found.describe(), f"{count} answer(s)")


def _journal_find(peer: Peer, target: str, asked: str, result: str, outcome=Outcome.SUCCESS) -> None:
    record(Action.QUERY, ae_title=peer.ae_title, address=peer.address, target=target, outcome=outcome,
           detail=f"{asked}; {result}")


# --- C-MOVE and C-GET: the instances to send ----------------------------------------------------------


class SubOperations:
    """Counts the C-STORE responses of a retrieve, for the journal (pynetdicom keeps its own
    counts for the C-MOVE/C-GET responses but does not hand them to the handler)."""

    def __init__(self):
        self.completed = self.failed = self.warning = 0

    def on_message(self, event) -> None:
        if type(event.message).__name__ != "C_STORE_RSP":
            return
        code = event.message.command_set.Status
        if code == status.SUCCESS:
            self.completed += 1
        elif code in (0xB000, 0xB007, 0xB006):
            self.warning += 1
        else:
            self.failed += 1

    def summary(self, total: int) -> str:
        return f"{self.completed} of {total} sent, {self.warning} warning(s), {self.failed + self.unsent(total)} failed"

    def unsent(self, total: int) -> int:
        return max(0, total - self.completed - self.warning - self.failed)


def _matched(event, models: dict) -> tuple[query.Query, list]:
    """The instances a C-MOVE/C-GET asks for, with their study keys; refuses what it cannot run."""
    model = models[event.request.AffectedSOPClassUID]
    try:
        found, instances = query.instances_for(event.identifier, model)
        rows = list(instances.values("pk", "sop_instance_uid", "sop_class_uid", "transfer_syntax_uid", "file_path",
                                     "storage_location__path", "series__study__study_instance_uid",
                                     "series__study__patient__patient_id"))
    except query.QueryError as error:
        raise Refused(error.reason) from None
    except Exception as error:  # an undecodable identifier, a database failure
        log.exception("retrieve: cannot run the identifier")
        raise Refused(f"cannot run the request: {error}") from None
    if len(rows) > MAX_SUB_OPERATIONS:
        raise Refused(f"{len(rows)} instances match; at most {MAX_SUB_OPERATIONS} per request")
    return found, rows


def _allowed_and_matched(event, models: dict, action, peer: Peer, target: str) -> tuple[query.Query, list]:
    """The instances of a C-MOVE/C-GET the peer may have; a refusal is journaled and raised."""
    if not _allowed(peer):
        record(action, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.DENIED, detail="calling AE may not retrieve")
        raise Refused(f"{peer.ae_title} may not retrieve")
    try:
        return _matched(event, models)
    except Refused as refused:
        record(action, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.FAILURE, detail=str(refused))
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


def _can_send(assoc, sop_class: str, syntax: str, exactly: bool = False) -> bool:
    """Whether pynetdicom's send_c_store will find an accepted context (the same lookup);
    `exactly`: in this very transfer syntax (a streamed file is not converted)."""
    try:
        assoc._get_valid_context(sop_class, syntax, "scu", allow_conversion=not exactly)
        return True
    except ValueError:
        return False


def dataset_to_send(row: dict, assoc) -> Dataset:
    path = Path(row["storage_location__path"]) / row["file_path"]
    return prepared(path, row["sop_class_uid"], row["transfer_syntax_uid"], assoc, row["sop_instance_uid"])


class StoredFile(Dataset):
    """A stored file to send as it is. pynetdicom's C-MOVE/C-GET loops want a Dataset; our
    `streaming` wrapper of the association's send_c_store hands pynetdicom the file's path
    instead, which it streams from disk (STORE_SEND_CHUNKED_DATASET) without decoding the data
    set and encoding it again (that took most of a worker's time per instance)."""

    def __init__(self, path: Path, sop_class: str, sop_instance: str):
        super().__init__()
        self.SOPClassUID = sop_class
        self.SOPInstanceUID = sop_instance  # for the failed-instances list
        object.__setattr__(self, "stored_path", path)


def streaming(assoc) -> None:
    """Let `assoc` send StoredFile items from their files (see StoredFile)."""
    if getattr(assoc, "pacs_streaming", False):  # a later C-GET on the same association
        return
    assoc.pacs_streaming = True
    original = assoc.send_c_store

    def send_c_store(dataset, *args, **kwargs):
        if isinstance(dataset, StoredFile):
            return original(dataset.stored_path, *args, **kwargs)
        return original(dataset, *args, **kwargs)

    assoc.send_c_store = send_c_store


def prepared(path: Path, sop_class: str, stored_syntax: str, assoc, sop_instance: str = "") -> Dataset:
    """A stored file as the peer accepts it: streamed as stored when the peer took its exact
    transfer syntax, else read and re-encoded or decompressed. A file that cannot be read or
    decoded comes back as a data set that pynetdicom cannot send, so it is counted as a failed
    sub-operation (with its SOP Instance UID in the failed list)."""
    if sop_instance and _can_send(assoc, sop_class, stored_syntax, exactly=True):
        return StoredFile(path, sop_class, sop_instance)
    try:
        ds = dcmread(path)
    except Exception as error:
        log.error("retrieve: cannot read stored file %s error=%r", path, error)
        return _unsendable(None)
    syntax = UID(stored_syntax)
    if _can_send(assoc, sop_class, syntax):
        return ds
    if syntax.is_compressed and _can_send(assoc, sop_class, ExplicitVRLittleEndian):
        try:
            ds.decompress(generate_instance_uid=False)  # the same instance, only re-encoded
            return ds
        except Exception as error:
            log.warning("retrieve: cannot decompress %s syntax=%s error=%r", path, syntax, error)
    else:
        log.warning("retrieve: the peer accepts neither %s nor uncompressed for %s", syntax, path)
    return _unsendable(ds)


def _unsendable(ds: Dataset | None) -> Dataset:
    failed = Dataset()
    failed.SOPInstanceUID = ds.SOPInstanceUID if ds is not None and "SOPInstanceUID" in ds else ""
    return failed  # no SOP Class UID: send_c_store refuses it, pynetdicom counts a failure


class RetrieveJournal:
    """The one journal entry per study of a C-MOVE/C-GET, written when it ends whichever way:
    completed, cancelled, or cut short (destination unreachable, association ended)."""

    def __init__(self, action, peer: Peer, target: str, rows: list[dict]):
        self.action, self.peer, self.target, self.rows = action, peer, target, rows
        self.counts = SubOperations()
        self.written = False

    def finish(self, how: str = "") -> None:
        if self.written:
            return
        self.written = True
        total = len(self.rows)
        complete = self.counts.completed + self.counts.warning == total and not how
        detail = (f"{how}; " if how else "") + self.counts.summary(total)
        studies = {(r["series__study__study_instance_uid"], r["series__study__patient__patient_id"]) for r in self.rows}
        for study_uid, patient_id in sorted(studies) or [("", "")]:
            record(self.action, ae_title=self.peer.ae_title, address=self.peer.address, target=self.target,
                   study_uid=study_uid, patient_id=patient_id, detail=detail,
                   outcome=Outcome.SUCCESS if complete else Outcome.FAILURE)


def _send_all(event, rows: list[dict], assoc_of, journal: RetrieveJournal):
    """Yield each instance to send (Pending), honouring C-CANCEL between instances."""
    try:
        for row in rows:
            if event.is_cancelled:
                journal.finish("cancelled")
                yield status.CANCEL, None
                return
            yield status.PENDING, dataset_to_send(row, assoc_of())
        journal.finish()
    finally:  # pynetdicom stopped resuming us: the destination or the requestor went away
        journal.finish("stopped early")


# --- C-MOVE -------------------------------------------------------------------------------------------


def handle_move(event):
    peer = Peer.of(event)
    destination_ae = event.move_destination or ""
    target = f"C-MOVE to {destination_ae}"
    destination = registry.move_destination(destination_ae)
    if destination is None:
        record(Action.MOVE, ae_title=peer.ae_title, address=peer.address, target=target,
               outcome=Outcome.FAILURE, detail="move destination unknown (0xA801)")
        yield None, None  # pynetdicom answers 0xA801 Move Destination Unknown
        return
    found, rows = _allowed_and_matched(event, MOVE_MODELS, Action.MOVE, peer, target)
    journal = RetrieveJournal(Action.MOVE, peer, f"{target} ({found.level})", rows)
    sub_association = {}

    def accepted(accept_event):
        sub_association["assoc"] = accept_event.assoc
        streaming(accept_event.assoc)

    options = {
        "contexts": storage_contexts(rows),
        "max_pdu": settings.PACS_MAX_PDU,
        "evt_handlers": [(evt.EVT_CONN_OPEN, no_delay), (evt.EVT_ACCEPTED, accepted),
                         (evt.EVT_DIMSE_RECV, journal.counts.on_message)],
    }
    yield destination.host, destination.port, options
    if not rows:
        journal.finish()
        yield 0
        return
    try:
        yield len(rows)
    finally:
        if not sub_association:  # pynetdicom could not associate and answered 0xA801
            journal.finish("destination did not accept the association")
    yield from _send_all(event, rows, lambda: sub_association["assoc"], journal)


# --- C-GET --------------------------------------------------------------------------------------------


def handle_get(event):
    peer = Peer.of(event)
    target = "C-GET"
    found, rows = _allowed_and_matched(event, GET_MODELS, Action.RETRIEVE, peer, target)
    journal = RetrieveJournal(Action.RETRIEVE, peer, f"{target} ({found.level})", rows)
    assoc = event.assoc
    streaming(assoc)
    assoc.bind(evt.EVT_DIMSE_RECV, journal.counts.on_message)
    try:
        yield len(rows)
        yield from _send_all(event, rows, lambda: assoc, journal)
    finally:
        assoc.unbind(evt.EVT_DIMSE_RECV, journal.counts.on_message)


HANDLERS = [
    (evt.EVT_C_FIND, handle_find),
    (evt.EVT_C_MOVE, handle_move),
    (evt.EVT_C_GET, handle_get),
]
