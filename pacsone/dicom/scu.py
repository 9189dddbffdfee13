"""What we ask of remote AEs: echo, find, move to us, store (forward). Used by pages, jobs and
`manage.py aes`. Each call opens one association, does its work and releases it; a remote that
cannot be reached, rejects us or answers a failure raises `ScuError` with a reason for people.

Retrieved instances reach us as C-STORE sub-operations on our own SCP, which hands each to the
one ingest path (pacsone.ingest.ingest_file): nothing retrieved bypasses it.
"""

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from .. import storage
from ..models import Instance, RemoteAE
from . import charsets, query
from .net import sending, status
from .net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .qr import storage_contexts
from .net.requestor import AssociationRefused, StoreAssociation, rejection_message
from ..humanize import count

log = logging.getLogger(__name__)

# pynetdicom's standard handlers format a log line for every PDU and message, whatever the log
# level; our pages and jobs report what matters themselves.
_config.LOG_HANDLER_LEVEL = "none"

TIMEOUT_SECONDS = 30
FIND = {query.PATIENT_ROOT: PatientRootQueryRetrieveInformationModelFind,
        query.STUDY_ROOT: StudyRootQueryRetrieveInformationModelFind}
MOVE = {query.PATIENT_ROOT: PatientRootQueryRetrieveInformationModelMove,
        query.STUDY_ROOT: StudyRootQueryRetrieveInformationModelMove}
MAX_FIND_ANSWERS = 5000  # a remote search stops (and cancels) beyond this


class ScuError(Exception):
    pass


@dataclass
class MoveResult:
    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0

    @property
    def ok(self) -> bool:
        return self.status == status.SUCCESS and not self.failed

    def summary(self) -> str:
        return f"{self.completed} received, {count(self.warning, 'warning', 'warnings')}, {self.failed} failed (status 0x{self.status:04X})"


@dataclass
class StoreResult:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # reasons


def _ae(*contexts) -> AE:
    ae = AE(ae_title=settings.PACS_AE_TITLE)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_SECONDS
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def no_delay(event) -> None:
    """EVT_CONN_OPEN: Nagle's algorithm would hold each small PDU back until the peer's delayed
    ACK (~40 ms per message)."""
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RejectionNote:
    """An A-ASSOCIATE-RJ, noted as pynetdicom's DUL thread reads it (bind `handler`). Its
    negotiating thread, when it looks after the DUL has already closed the socket, reports an
    abort instead (seen on a loaded machine): neither is_rejected nor EVT_ACSE_RECV then tell."""

    def __init__(self):
        self.pdu: A_ASSOCIATE_RJ | None = None
        self.handler = (evt.EVT_PDU_RECV, self._note)

    def _note(self, event) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            self.pdu = event.pdu


def _associate(ae: AE, remote: RemoteAE):
    rejection = RejectionNote()
    assoc = ae.associate(remote.host, remote.port, ae_title=remote.ae_title, max_pdu=settings.PACS_MAX_PDU,
                         evt_handlers=[(evt.EVT_CONN_OPEN, no_delay), rejection.handler])
    if not assoc.is_established:
        if rejection.pdu is not None:
            raise ScuError(rejection_message(remote.ae_title, rejection.pdu))
        raise ScuError(f"{remote.ae_title} at {remote.host}:{remote.port} cannot be reached")
    return assoc


def _status_of(rsp: Dataset | None, what: str, remote: RemoteAE) -> int:
    if rsp is None or "Status" not in rsp:
        raise ScuError(f"{remote.ae_title} sent no valid answer to {what} (timeout or aborted)")
    return int(rsp.Status)


def echo(remote: RemoteAE) -> int:
    """C-ECHO; returns the status (0 = success)."""
    assoc = _associate(_ae(Verification), remote)
    try:
        return _status_of(assoc.send_c_echo(), "C-ECHO", remote)
    finally:
        assoc.release()


def find(remote: RemoteAE, identifier: Dataset, model: str = query.STUDY_ROOT,
         limit: int = MAX_FIND_ANSWERS) -> list[Dataset]:
    """C-FIND; the answers (at most `limit`: the rest is cancelled)."""
    sop_class = FIND[model]
    charsets.name_query_charset(identifier)
    assoc = _associate(_ae(sop_class), remote)
    answers = []
    try:
        responses = assoc.send_c_find(identifier, sop_class)
        for rsp, answer in responses:
            code = _status_of(rsp, "C-FIND", remote)
            if code in (0xFF00, 0xFF01):
                answers.append(answer)
                if len(answers) >= limit:
                    assoc.send_c_cancel(1, query_model=sop_class)
                continue
            if code not in (status.SUCCESS, status.CANCEL):
                comment = rsp.get("ErrorComment", "")
                raise ScuError(f"{remote.ae_title} answered the query with status 0x{code:04X} {comment}".strip())
    finally:
        assoc.release()
    return answers[:limit]


def move_to_us(remote: RemoteAE, identifier: Dataset, model: str = query.STUDY_ROOT) -> MoveResult:
    """C-MOVE with ourselves as destination: the remote must know our AE title's address."""
    sop_class = MOVE[model]
    assoc = _associate(_ae(sop_class), remote)
    result = None
    try:
        for rsp, _identifier in assoc.send_c_move(identifier, settings.PACS_AE_TITLE, sop_class):
            code = _status_of(rsp, "C-MOVE", remote)
            result = MoveResult(code, rsp.get("NumberOfCompletedSuboperations", 0) or 0,
                                rsp.get("NumberOfFailedSuboperations", 0) or 0,
                                rsp.get("NumberOfWarningSuboperations", 0) or 0)
    finally:
        assoc.release()
    if result is None:
        raise ScuError(f"{remote.ae_title} sent no answer to C-MOVE")
    if result.status == status.MOVE_DESTINATION_UNKNOWN:
        raise ScuError(f"{remote.ae_title} does not know our AE title {settings.PACS_AE_TITLE} (0xA801): "
                       "register it there as a move destination")
    return result


def study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = query.STUDY
    ds.StudyInstanceUID = study_uid
    return ds


def retrieve_study(remote: RemoteAE, study_uid: str) -> MoveResult:
    return move_to_us(remote, study_identifier(study_uid))


def store_stream(remote: RemoteAE, instances: list[sending.Instance],
                 answered: Callable[[sending.Instance, int | None, str], bool]) -> None:
    """C-STORE `instances` over one association: each in its stored transfer syntax when the
    remote accepted it, else decompressed (sending.send_instance). After each, `answered(instance,
    status, reason)` is called (status None: we could not send it; reason in words); it returns
    False to stop. ScuError when the association cannot be made or is lost; the instances
    answered before that stay answered."""
    if not instances:
        return
    rows = [{"sop_class_uid": i.sop_class, "transfer_syntax_uid": i.transfer_syntax} for i in instances]
    association = StoreAssociation(remote.host, remote.port, settings.PACS_AE_TITLE, remote.ae_title,
                                   storage_contexts(rows), settings.PACS_MAX_PDU, TIMEOUT_SECONDS)
    try:
        association.open()
    except AssociationRefused as refused:
        raise ScuError(str(refused)) from None
    # The answer to one instance is handed to `answered` (which records it) once the next
    # instance's request is on its way: the record is written while the destination stores the
    # next one. An instance confirmed but not yet recorded is still at most one, as when each
    # answer was recorded before the next request.
    answer = None  # (instance, status, reason) received, not yet handed over
    try:
        for message_id, instance in enumerate(instances, 1):
            try:
                sending.send_request(association, instance, message_id, as_scu=True)
            except sending.Unsendable as error:
                now = (instance, None, str(error))
            except OSError as error:  # the stored file cannot be read (or the socket failed: below)
                if isinstance(error, (ConnectionError, TimeoutError)):
                    raise
                now = (instance, None, f"the stored file cannot be read ({error.strerror})")
            else:
                now = None
            if answer is not None and not answered(*answer):
                if now is None:  # its request is out: take its answer before stopping
                    code = sending.await_status(association, message_id)
                    answered(instance, code, status_text(code))
                answer = None
                break
            if now is not None:
                answer = None
                if not answered(*now):
                    break
                continue
            code = sending.await_status(association, message_id)
            answer = (instance, code, status_text(code))
        if answer is not None:
            answered(*answer)
    except AssociationRefused as lost:
        raise ScuError(str(lost)) from None
    except (OSError, ConnectionError) as lost:
        raise ScuError(f"{remote.ae_title} went away: {lost}") from None
    finally:
        association.release()


def status_text(code: int) -> str:
    """A C-STORE status in words, for job pages and the journal."""
    if code == status.SUCCESS:
        return "success"
    if code in sending.WARNING_STATUSES:
        return f"stored with a warning (0x{code:04X})"
    if 0xA700 <= code <= 0xA7FF:
        return f"refused: out of resources (0x{code:04X})"
    if 0xA900 <= code <= 0xA9FF:
        return f"error: data set does not match SOP class (0x{code:04X})"
    if code == status.SOP_CLASS_NOT_SUPPORTED:
        return "refused: SOP class not supported (0x0122)"
    if code == status.NOT_AUTHORIZED:
        return "refused: not authorized (0x0124)"
    if 0xC000 <= code <= 0xCFFF:
        return f"error: cannot understand (0x{code:04X})"
    return f"failed with status 0x{code:04X}"


def outgoing_instance(item) -> sending.Instance:
    """An indexed instance (its stored file, through pacsone.storage) or a file of ours that is
    not in storage (a path)."""
    if isinstance(item, Instance):
        return sending.Instance(storage.opener(item.storage_location_id, item.file_path), item.sop_class_uid,
                                item.sop_instance_uid, item.transfer_syntax_uid, name=item.sop_instance_uid)
    path = Path(item)
    ds = dcmread(path, stop_before_pixels=True)
    return sending.Instance(lambda: open(path, "rb"), ds.SOPClassUID, ds.SOPInstanceUID,
                            ds.file_meta.TransferSyntaxUID, name=path.name)


def store(remote: RemoteAE, items: list) -> StoreResult:
    """C-STORE indexed instances or files given by path (as they are; decompressed when the
    remote takes uncompressed only)."""
    instances = []
    result = StoreResult()
    for item in items:
        try:
            instances.append(outgoing_instance(item))
        except Exception as error:
            name = item.sop_instance_uid if isinstance(item, Instance) else Path(item).name
            result.failed.append(f"{name}: unreadable ({error})")

    def answered(instance: sending.Instance, code: int | None, reason: str) -> bool:
        if code in (status.SUCCESS, *sending.WARNING_STATUSES):
            result.sent += 1
        else:
            result.failed.append(f"{instance.name}: {reason}")
        return True

    store_stream(remote, instances, answered)
    return result
