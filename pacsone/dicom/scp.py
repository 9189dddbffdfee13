"""The DICOM SCP: Verification, Storage, Query/Retrieve, Worklist, MPPS and Storage Commitment,
one process per worker, several workers per port.

Tuned for throughput (see docs/benchmarks.md and `make bench`):
- each association is served by one thread that reads and writes its socket itself
  (acceptor.py), not by pynetdicom's two threads and their queues;
- datasets are received straight into a file in the storage's temp folder and the ingest path
  renames that file into place, so pixel data is never decoded nor copied in memory; the
  file's fdatasync starts as soon as it is complete, while the header is parsed;
- a large maximum PDU, so an image arrives in a few reads;
- TCP_NODELAY on every association's socket;
- several worker processes accepting from one listening socket (opened by the supervisor),
  so associations spread over the CPUs.

And bounded so that no peer can stall or starve it (README, "DICOM engine limits"): at most
PACS_DICOM_MAX_ASSOCIATIONS associations per worker (more are rejected at once, transient), each
on a pool thread whose database connection is closed when it idles; deadlines and size caps per
association (acceptor.py); temp files left by a crash swept while running.
"""

import copy
import errno
import gc
import importlib
import logging
import os
import signal
import socket
import socketserver
import threading
import time
import weakref
from pathlib import Path

from django.conf import settings
from django.db import connections
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import Verification, uid_to_service_class

from audit.journal import Action, record
from audit.journal import Outcome as JournalOutcome

from .. import storage
from ..ingest import UID_PATTERN, IngestResult, Origin, Outcome, PostIngestBatch, ingest_file
from ..supervisor import PortInUse
from . import commitment, mpps, policy, qr, worklist
from .net import commands, status
from .net.acceptor import (ANY_STORAGE_CLASS, REJECT_CALLED_AE, REJECT_CALLING_AE, REJECT_TOO_MANY,
                           AcceptedAssociation, AcceptedContext, AcceptorSettings, Limits, Message)
from .pool import ThreadPool
from .receiving import ReceivedFile

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10
BUSY_ACCEPT_DELAY_SECONDS = 0.005  # per association a worker serves, up to BUSY_ACCEPT_MAX_STEPS
BUSY_ACCEPT_MAX_STEPS = 4
FULL_ACCEPT_DELAY_SECONDS = 0.05  # a worker at its cap lets one with room accept first
# Over the cap, a connection is answered A-ASSOCIATE-RJ by one of these few threads (each for at
# most acceptor.REJECTION_DEADLINE_SECONDS); when they are all busy it is closed without a word.
REJECTING_AT_ONCE = 4
IDLE_CONNECTION_CHECK_SECONDS = 30  # a connection idle longer is checked before it is used again

STANDARD_UID_ROOT = "1.2.840.10008."
STANDARD_STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."  # the standard's storage SOP classes (PS3.6 Annex A)

REJECTION_REASONS = {
    REJECT_TOO_MANY: "too many associations",
    REJECT_CALLED_AE: "called AE title not recognized",
    REJECT_CALLING_AE: "calling AE title not recognized",
}

STATUS_FOR_OUTCOME = {
    Outcome.STORED: status.SUCCESS,
    Outcome.REPLACED: status.SUCCESS,
    Outcome.IGNORED: status.SUCCESS,
    Outcome.INVALID: status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
    Outcome.UNREADABLE: status.CANNOT_UNDERSTAND,
    Outcome.FAILED: status.OUT_OF_RESOURCES,
}


def accepts_calling_ae(assoc: AcceptedAssociation) -> bool:
    """The calling-AE policy (policy.py), read from the registry at each association. A refusal
    is answered A-ASSOCIATE-RJ "calling AE title not recognized" and journaled (handle_rejected)."""
    decision = policy.may_associate(policy.caller_of(assoc))
    if not decision.allowed:
        assoc.extra["rejected_because"] = decision.reason
    return decision.allowed


def our_ae_titles(server_ae_title: str) -> frozenset[str]:
    """The AE titles this archive answers to: its main one and every instance's."""
    titles = {server_ae_title, settings.PACS_AE_TITLE, *(title for title, _port in settings.PACS_DICOM_INSTANCES)}
    return frozenset(title.strip() for title in titles)


def called_ae_policy(server_ae_title: str):
    """The called-AE check: one of our AE titles, unless PACS_ACCEPT_CALLED_AE=any."""
    ours = our_ae_titles(server_ae_title)

    def accepts_called_ae(ae_title: str) -> bool:
        return settings.PACS_ACCEPT_CALLED_AE == "any" or ae_title.strip() in ours

    return accepts_called_ae


def is_storage_sop_class(uid: str) -> bool:
    """Whether a SOP class is taken for a storage SOP class: one pynetdicom lists as storage,
    one of the standard's storage family that pynetdicom does not list yet (newer or retired),
    or a private one (GE, Siemens, Philips, ...) that pynetdicom does not know for another service.
    A standard UID of any other service (query, worklist, print, ...) is not."""
    if len(uid) > 64 or not UID_PATTERN.match(uid):
        return False
    service = uid_to_service_class(uid)
    if service is StorageServiceClass:
        return True
    if service is not ServiceClass:  # pynetdicom knows it for another service
        return False
    if uid.startswith(STANDARD_UID_ROOT):
        return uid.startswith(STANDARD_STORAGE_ROOT)
    return True


def storage_context_by_policy(uid: str) -> PresentationContext | None:
    """A context for a storage SOP class pynetdicom does not list (PACS_ACCEPT_UNKNOWN_SOP_CLASSES):
    accepted for C-STORE only, in every transfer syntax, and stored as received."""
    if not settings.PACS_ACCEPT_UNKNOWN_SOP_CLASSES or not is_storage_sop_class(uid):
        return None
    context = _context(uid)
    qr.allow_get_role([context])
    return context


class DicomServer(socketserver.TCPServer):
    """An SCP worker's server: a pool thread per association, at most `max_associations` at
    once; a connection beyond that is rejected at once (A-ASSOCIATE-RJ transient, local limit
    exceeded) instead of waiting. Under `runpacs` every worker of a port accepts from one
    listening socket that the supervisor opened and passed down (`listen_fd`): an idle worker
    picks up the next association first, so work spreads evenly. Started alone, it binds the
    port itself, and fails with PortInUse when another program listens there. Nagle is turned
    off on every association. Every PACS_TEMP_SWEEP_MINUTES it sweeps the temp folder."""

    allow_reuse_address = True  # SO_REUSEADDR: only rebinding over TIME_WAIT, never a live listener
    request_queue_size = 64

    def __init__(self, address, acceptor_settings: AcceptorSettings, listen_fd: int | None = None,
                 max_associations: int = 24, thread_idle_seconds: float = 60, temp_folder: Path | None = None):
        self.listen_fd = listen_fd
        self.acceptor_settings = acceptor_settings
        self.max_associations = max_associations
        self.active_associations: set[AcceptedAssociation] = set()
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.pool = ThreadPool(max_associations, thread_idle_seconds, on_idle=connections.close_all)
        self._rejecting_pool = ThreadPool(REJECTING_AT_ONCE, thread_idle_seconds, on_idle=connections.close_all,
                                          name="rejection")
        self._count_lock = threading.Lock()
        self.serving = 0  # associations handed to the pool and not finished
        self._rejecting = 0
        self.temp_folder = temp_folder
        self._next_sweep = time.monotonic() + settings.PACS_TEMP_SWEEP_MINUTES * 60
        super().__init__(address, socketserver.BaseRequestHandler)

    def open_connections(self) -> int:
        """Connections this worker accepted and has not closed yet (an association thread
        starts only a moment after its accept: counting those threads would miss a burst)."""
        return sum(1 for connection in list(self._connections) if connection.fileno() != -1)

    def server_bind(self) -> None:
        if self.listen_fd is None:
            try:
                super().server_bind()
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortInUse(self.server_address[1]) from None
                raise
            return
        self.socket.close()
        self.socket = socket.socket(fileno=self.listen_fd)
        # Several workers wait on this socket: the losers of a race must not block in accept().
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self.listen_fd is None:
            super().server_activate()

    def get_request(self):
        if self.listen_fd is not None:
            # All workers wake up for a new connection; one that is already serving holds back a
            # little so that an idle worker takes it (otherwise 4 associations often split 3+1).
            if self.serving >= self.max_associations:
                time.sleep(FULL_ACCEPT_DELAY_SECONDS)
            else:
                busy = min(self.open_connections(), BUSY_ACCEPT_MAX_STEPS)
                if busy:
                    time.sleep(BUSY_ACCEPT_DELAY_SECONDS * busy)
        client_socket, address = super().get_request()  # OSError if another worker took it
        self._connections.add(client_socket)
        client_socket.setblocking(True)
        client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client_socket, address

    def process_request(self, request, client_address) -> None:
        with self._count_lock:
            if self.serving < self.max_associations:
                self.serving += 1
                self.pool.submit(self._serve, request, client_address)
                return
            rejecting = self._rejecting < REJECTING_AT_ONCE
            if rejecting:
                self._rejecting += 1
                self._rejecting_pool.submit(self._reject, request, client_address)
        log.warning("association limit reached max_associations=%d address=%s: %s", self.max_associations,
                    client_address[0], "rejecting" if rejecting else "closing (rejections busy)")
        if not rejecting:
            self.shutdown_request(request)

    def _serve(self, sock: socket.socket, address) -> None:
        try:
            assoc = AcceptedAssociation(sock, address, self.acceptor_settings)
            self.active_associations.add(assoc)
            try:
                assoc.serve()
            finally:
                self.active_associations.discard(assoc)
        finally:
            with self._count_lock:
                self.serving -= 1

    def _reject(self, sock: socket.socket, address) -> None:
        try:
            AcceptedAssociation(sock, address, self.acceptor_settings, rejection=REJECT_TOO_MANY).serve()
        finally:
            with self._count_lock:
                self._rejecting -= 1

    def service_actions(self) -> None:
        """Between accepts (serve_forever's poll): sweep the temp folder when it is time."""
        if self.temp_folder is not None and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + settings.PACS_TEMP_SWEEP_MINUTES * 60
            threading.Thread(target=sweep_temp_folder, args=(self.temp_folder,), name="temp-sweep",
                             daemon=True).start()

    def handle_error(self, request, client_address) -> None:
        log.exception("association from %s failed", client_address)

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()
        self.pool.close()
        self._rejecting_pool.close()


class CheaplyCopiedContext(PresentationContext):
    """pynetdicom's negotiation copies our contexts for every association: for our ~170 contexts
    of 45 transfer syntaxes a deep copy took tens of milliseconds. UIDs are immutable strings,
    so copying the list of syntaxes is a complete copy."""

    def __deepcopy__(self, memo):
        clone = copy.copy(self)
        clone._transfer_syntax = list(self._transfer_syntax)
        return clone


def preferred_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pynetdicom knows, so that compressed data is accepted and stored
    as it was sent. Where a peer offers several in one context, the first of ours is picked:
    Explicit VR Little Endian first (private elements keep their VR), Implicit last."""
    others = [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)]
    return [ExplicitVRLittleEndian, *others, ImplicitVRLittleEndian]


def supported_contexts() -> list[PresentationContext]:
    """Verification, and Storage of every storage SOP class pynetdicom knows."""
    abstract_syntaxes = [Verification] + [c.abstract_syntax for c in AllStoragePresentationContexts]
    contexts = [_context(abstract_syntax) for abstract_syntax in abstract_syntaxes]
    qr.allow_get_role(contexts)
    return contexts + qr.query_retrieve_contexts() + worklist.contexts() + mpps.contexts() + commitment.contexts()


def _context(abstract_syntax: str) -> PresentationContext:
    context = CheaplyCopiedContext()
    context.abstract_syntax = abstract_syntax
    context.transfer_syntax = preferred_transfer_syntaxes()
    return context


# --- Services -----------------------------------------------------------------------------------


def _batch(assoc: AcceptedAssociation) -> PostIngestBatch:
    batch = assoc.extra.get("batch")
    if batch is None:
        batch = assoc.extra["batch"] = PostIngestBatch()
    return batch


def status_for(result: IngestResult) -> tuple[int, str | None]:
    code = STATUS_FOR_OUTCOME[result.outcome]
    return code, (None if code == status.SUCCESS else result.reason[:64])


# A temp file opened ahead for the next C-STORE of the association this thread serves: opened
# after an answer went out, while the peer reads it and sends its next request, instead of
# between that request's command and its data set (a create in a busy folder: 0.1-0.3 ms).
_next_store_file = threading.local()


def open_store_file(temp_folder: Path):
    """Where a C-STORE's data set is written as it arrives: a temp file in the storage's temp
    folder (so that storing it is a rename) that also reads the header early (receiving.py)."""

    def open_file(context: AcceptedContext, command: dict, calling_ae: str) -> ReceivedFile:
        opened = getattr(_next_store_file, "opened", None)
        _next_store_file.opened = None
        if opened is not None and Path(opened[0]).parent != temp_folder:
            storage.discard_temp(opened)
            opened = None
        return ReceivedFile(temp_folder, command.get(commands.AFFECTED_SOP_CLASS_UID, ""),
                            command.get(commands.AFFECTED_SOP_INSTANCE_UID, ""), context.transfer_syntax, calling_ae,
                            opened=opened)

    return open_file


def open_next_store_file(folder: Path) -> None:
    if getattr(_next_store_file, "opened", None) is None:
        try:
            _next_store_file.opened = storage.open_temp(folder, ReceivedFile.SUFFIX)
        except OSError:
            pass  # the next C-STORE opens its file itself, and reports the error if it persists


def discard_next_store_file() -> None:
    opened = getattr(_next_store_file, "opened", None)
    _next_store_file.opened = None
    if opened is not None:
        storage.discard_temp(opened)


def handle_store(assoc: AcceptedAssociation, message: Message) -> None:
    """C-STORE: hand the received file to the one ingest path; answer only after it returns."""
    calling_ae = assoc.requestor.ae_title
    received: ReceivedFile = message.file
    sop_instance = message.command.get(commands.AFFECTED_SOP_INSTANCE_UID)
    if received is None:  # a C-STORE-RQ without a data set
        code, reason = status.CANNOT_UNDERSTAND, "the C-STORE request has no data set"
    elif not (decision := policy.may_store(policy.caller_of(assoc))).allowed:
        received.discard()
        code, reason = status.NOT_AUTHORIZED, decision.reason
        record(Action.STORE, ae_title=calling_ae, address=assoc.requestor.address, outcome=JournalOutcome.DENIED,
               target=f"C-STORE {sop_instance or ''}"[:255], detail=f"refused (0x0124): {reason}")
    else:
        origin = Origin("dicom", ae_title=calling_ae, address=assoc.requestor.address)
        try:
            result = ingest_file(Path(received.name), origin, adopt=True, batch=_batch(assoc), received=received,
                                 header=received.header, header_json=received.header_json)
        finally:
            received.close()
        code, reason = status_for(result)
    assoc.send_response(message, commands.C_STORE_RSP, code, affected_sop_instance_uid=sop_instance,
                        error_comment=reason)
    if received is not None:
        open_next_store_file(Path(received.name).parent)


def handle_echo(assoc: AcceptedAssociation, message: Message) -> None:
    assoc.send_response(message, commands.C_ECHO_RSP, status.SUCCESS)


def handle_established(assoc: AcceptedAssociation) -> None:
    check_idle_database_connections()
    requestor = assoc.requestor
    log.info("association established calling_ae=%s address=%s", requestor.ae_title, requestor.address)


def handle_released(assoc: AcceptedAssociation) -> None:
    """Nothing of the association stays in the temp folder once the peer has its A-RELEASE-RP."""
    discard_next_store_file()


def handle_finished(assoc: AcceptedAssociation) -> None:
    """Released, aborted or dropped: queue the follow-up work; keep this thread's database
    connection for its next association if it is in a clean state."""
    discard_next_store_file()  # aborted or dropped: not done yet
    batch = assoc.extra.get("batch")
    if batch is not None and batch.study_pks:
        batch.flush()
    keep_clean_database_connections()


def handle_rejected(assoc: AcceptedAssociation) -> None:
    result, source, code = assoc.rejection or (0, 0, 0)
    reason = assoc.extra.get("rejected_because") or REJECTION_REASONS.get((result, source, code), "refused")
    log.warning("association rejected calling_ae=%s called_ae=%s address=%s result=%d source=%d reason=%d (%s)",
                assoc.requestor.ae_title, assoc.called_ae_title, assoc.requestor.address, result, source, code, reason)
    try:
        record(Action.ASSOCIATION, ae_title=assoc.requestor.ae_title, address=assoc.requestor.address,
               target=f"association to {assoc.called_ae_title or assoc.ae_title}"[:255],
               outcome=JournalOutcome.DENIED, detail=f"rejected: {reason}")
    except Exception:  # the database is down: the rejection stands, the log line above keeps it
        log.exception("cannot journal a rejected association calling_ae=%s", assoc.requestor.ae_title)
    keep_clean_database_connections()  # the calling-AE check may have opened one


def keep_clean_database_connections() -> None:
    """Close this thread's connections that failed or were left in a transaction; keep the others
    (Django's CONN_MAX_AGE applies to web requests, not to these threads)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.errors_occurred or connection.in_atomic_block or not connection.get_autocommit():
            connection.close()
        else:
            connection.pacs_idle_since = time.monotonic()


def check_idle_database_connections() -> None:
    """A connection that waited a while may have been dropped by the server (MariaDB's
    wait_timeout): check it before this association uses it."""
    now = time.monotonic()
    for connection in connections.all(initialized_only=True):
        idle_since = getattr(connection, "pacs_idle_since", now)
        if connection.connection is not None and now - idle_since > IDLE_CONNECTION_CHECK_SECONDS:
            if not connection.is_usable():
                connection.close()


# (Command Field, SOP Class UID) -> service. A new service (e.g. Modality Worklist C-FIND)
# registers its SOP class here and its context in supported_contexts().
SERVICES = {
    (commands.C_ECHO_RQ, str(Verification)): handle_echo,
    **{(commands.C_STORE_RQ, str(c.abstract_syntax)): handle_store for c in AllStoragePresentationContexts},
    (commands.C_STORE_RQ, ANY_STORAGE_CLASS): handle_store,  # storage SOP classes accepted by policy
    **qr.SERVICES,
    **worklist.SERVICES,  # Modality Worklist C-FIND (worklist.py)
    **mpps.SERVICES,  # MPPS N-CREATE/N-SET (mpps.py)
    **commitment.SERVICES,  # Storage Commitment N-ACTION, and N-EVENT-REPORT of our requests (commitment.py)
}


def acceptor_settings(ae_title: str, temp_folder: Path) -> AcceptorSettings:
    return AcceptorSettings(
        ae_title=ae_title,
        contexts=supported_contexts(),
        services=SERVICES,
        max_pdu=settings.PACS_MAX_PDU,
        acse_timeout=settings.PACS_DICOM_ACSE_TIMEOUT,
        pdu_timeout=settings.PACS_DICOM_PDU_TIMEOUT,
        idle_timeout=settings.PACS_DICOM_IDLE_TIMEOUT,
        limits=Limits(command_bytes=settings.PACS_DICOM_MAX_COMMAND_BYTES,
                      identifier_bytes=settings.PACS_DICOM_MAX_IDENTIFIER_BYTES,
                      store_bytes=settings.PACS_DICOM_MAX_STORE_MB << 20),
        accepts_calling_ae=accepts_calling_ae,
        accepts_called_ae=called_ae_policy(ae_title),
        storage_context=storage_context_by_policy,
        open_store_file=open_store_file(temp_folder),
        on_established=handle_established,
        on_released=handle_released,
        on_finished=handle_finished,
        on_rejected=handle_rejected,
    )


# --- Running ----------------------------------------------------------------------------------------


def sweep_temp_folder(folder: Path) -> int:
    """Remove files not written to for PACS_TEMP_MAX_AGE_HOURS (left by a crash: a live receive
    writes at least every PACS_DICOM_PDU_TIMEOUT); how many were removed."""
    cutoff = time.time() - settings.PACS_TEMP_MAX_AGE_HOURS * 3600
    removed = 0
    try:
        leftovers = list(folder.iterdir())
    except OSError as error:
        log.warning("temp sweep failed folder=%s: %s", folder, error)
        return 0
    for leftover in leftovers:
        try:
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            pass  # gone already (another worker swept it) or not ours to remove
    if removed:
        log.info("temp sweep removed=%d folder=%s", removed, folder)
    return removed


def prepare_temp_folder() -> Path:
    """The storage's temp folder, where received data sets are written (so that storing them
    is a rename on one filesystem), cleared of files left there by a crash."""
    folder = storage.temp_dir(storage.default_location())
    folder.mkdir(parents=True, exist_ok=True)
    sweep_temp_folder(folder)
    return folder


def start_server(ae_title: str, port: int, host: str = "0.0.0.0", listen_fd: int | None = None) -> DicomServer:
    """Start a non-blocking SCP (used by `runscp` and by the tests); PortInUse when another
    program listens on the port."""
    folder = prepare_temp_folder()
    connections.close_all()  # each association thread opens its own connection
    server = DicomServer((host, port), acceptor_settings(ae_title, folder), listen_fd=listen_fd,
                         max_associations=settings.PACS_DICOM_MAX_ASSOCIATIONS,
                         thread_idle_seconds=settings.PACS_DICOM_THREAD_IDLE_SECONDS, temp_folder=folder)
    thread = threading.Thread(target=server.serve_forever, name=f"scp-{ae_title}-{port}", daemon=True)
    thread.start()
    log.info("dicom scp listening ae=%s port=%d max_pdu=%d max_associations=%d", ae_title, port,
             settings.PACS_MAX_PDU, settings.PACS_DICOM_MAX_ASSOCIATIONS)
    return server


def stop_server(server: DicomServer, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop accepting, let running associations finish for a while, then abort the rest."""
    server.shutdown()
    deadline = time.monotonic() + grace_seconds
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.1)
    for assoc in list(server.active_associations):
        assoc.abort()


def freeze_startup_objects() -> None:
    """Leave what start-up made (Django, the models, pydicom's dictionaries: some 130,000
    objects) out of the cyclic garbage collector's full collections from now on. Otherwise the
    first full collection after start-up walks them all, holding the GIL for 50-70 ms while the
    worker's associations wait: in a 600-instance MR send over 4 associations that was 0.2 ms of
    CPU per instance (the workers' CPU time, measured). What the end of the first association
    imports (the follow-up's tasks, PostIngestBatch.flush) is imported now, with the rest."""
    importlib.import_module("pacsone.tasks")
    gc.collect()
    gc.freeze()


def serve_until_signalled(ae_title: str, port: int, listen_fd: int | None = None) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start_server(ae_title, port, listen_fd=listen_fd)
    freeze_startup_objects()
    stop.wait()
    log.info("dicom scp stopping ae=%s port=%d pid=%d", ae_title, port, os.getpid())
    stop_server(server)
