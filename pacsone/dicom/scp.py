"""The DICOM SCP: Verification, Storage and Query/Retrieve, one process per worker, several
workers per port.

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
"""

import concurrent.futures
import copy
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
from pynetdicom.sop_class import Verification

from audit.journal import Action, record
from audit.journal import Outcome as JournalOutcome

from .. import storage
from ..ingest import IngestResult, Origin, Outcome, PostIngestBatch, ingest_file
from . import policy, qr
from .net import commands, status
from .net.acceptor import AcceptedAssociation, AcceptedContext, AcceptorSettings, Message
from .receiving import ReceivedFile

log = logging.getLogger(__name__)

STALE_TEMP_SECONDS = 24 * 3600
SHUTDOWN_GRACE_SECONDS = 10
BUSY_ACCEPT_DELAY_SECONDS = 0.005  # per association a worker serves, up to BUSY_ACCEPT_MAX_STEPS
BUSY_ACCEPT_MAX_STEPS = 4
MAX_ASSOCIATIONS = 64  # per worker process
# Associations run on a pool of threads that outlive them, so that a thread's database connection
# serves its next association too (a new MariaDB connection costs milliseconds per association).
ASSOCIATION_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=MAX_ASSOCIATIONS + 8,
                                                         thread_name_prefix="association")
IDLE_CONNECTION_CHECK_SECONDS = 30  # a connection idle longer is checked before it is used again

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


class DicomServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """An SCP worker's server: a thread per association. Under `runpacs` every worker of a port
    accepts from one listening socket that the supervisor opened and passed down (`listen_fd`):
    an idle worker picks up the next association first, so work spreads evenly. Started alone, it
    binds the port itself with SO_REUSEPORT. Nagle is turned off on every association. A worker
    that is busy lets idle workers accept first."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, acceptor_settings: AcceptorSettings, listen_fd: int | None = None):
        self.listen_fd = listen_fd
        self.acceptor_settings = acceptor_settings
        self.active_associations: set[AcceptedAssociation] = set()
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        super().__init__(address, AssociationHandler)

    def open_connections(self) -> int:
        """Connections this worker accepted and has not closed yet (an association thread
        starts only a moment after its accept: counting those threads would miss a burst)."""
        return sum(1 for connection in list(self._connections) if connection.fileno() != -1)

    def server_bind(self) -> None:
        if self.listen_fd is None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()
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
            busy = min(self.open_connections(), BUSY_ACCEPT_MAX_STEPS)
            if busy:
                time.sleep(BUSY_ACCEPT_DELAY_SECONDS * busy)
        client_socket, address = super().get_request()  # OSError if another worker took it
        self._connections.add(client_socket)
        client_socket.setblocking(True)
        client_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client_socket, address

    def process_request(self, request, client_address) -> None:
        ASSOCIATION_POOL.submit(self.process_request_thread, request, client_address)

    def handle_error(self, request, client_address) -> None:
        log.exception("association from %s failed", client_address)

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()


class AssociationHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: DicomServer = self.server
        assoc = AcceptedAssociation(self.request, self.client_address, server.acceptor_settings,
                                    too_many=lambda: len(server.active_associations) > MAX_ASSOCIATIONS)
        server.active_associations.add(assoc)
        try:
            assoc.serve()
        finally:
            server.active_associations.discard(assoc)


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
    syntaxes = preferred_transfer_syntaxes()
    contexts = []
    for abstract_syntax in abstract_syntaxes:
        context = CheaplyCopiedContext()
        context.abstract_syntax = abstract_syntax
        context.transfer_syntax = list(syntaxes)
        contexts.append(context)
    qr.allow_get_role(contexts)
    return contexts + qr.query_retrieve_contexts()


# --- Services -----------------------------------------------------------------------------------


def _batch(assoc: AcceptedAssociation) -> PostIngestBatch:
    batch = assoc.extra.get("batch")
    if batch is None:
        batch = assoc.extra["batch"] = PostIngestBatch()
    return batch


def status_for(result: IngestResult) -> tuple[int, str | None]:
    code = STATUS_FOR_OUTCOME[result.outcome]
    return code, (None if code == status.SUCCESS else result.reason[:64])


def open_store_file(temp_folder: Path):
    """Where a C-STORE's data set is written as it arrives: a temp file in the storage's temp
    folder (so that storing it is a rename) that also reads the header early (receiving.py)."""

    def open_file(context: AcceptedContext, command: dict) -> ReceivedFile:
        return ReceivedFile(temp_folder, command.get(commands.AFFECTED_SOP_CLASS_UID, ""),
                            command.get(commands.AFFECTED_SOP_INSTANCE_UID, ""), context.transfer_syntax)

    return open_file


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
        storage.SYNC_POOL.submit(_sync_quietly, received)  # the disk works while the row is prepared
        origin = Origin("dicom", ae_title=calling_ae, address=assoc.requestor.address)
        try:
            result = ingest_file(Path(received.name), origin, adopt=True, batch=_batch(assoc), received=received,
                                 header=received.header)
        finally:
            received.close()
        code, reason = status_for(result)
    assoc.send_response(message, commands.C_STORE_RSP, code, affected_sop_instance_uid=sop_instance,
                        error_comment=reason)


def _sync_quietly(received: ReceivedFile) -> None:
    try:
        received.sync()
    except OSError:
        pass  # the ingest's own sync() raises it again and fails the C-STORE


def handle_echo(assoc: AcceptedAssociation, message: Message) -> None:
    assoc.send_response(message, commands.C_ECHO_RSP, status.SUCCESS)


def handle_established(assoc: AcceptedAssociation) -> None:
    check_idle_database_connections()
    requestor = assoc.requestor
    log.info("association established calling_ae=%s address=%s", requestor.ae_title, requestor.address)


def handle_finished(assoc: AcceptedAssociation) -> None:
    """Released, aborted or dropped: queue the follow-up work; keep this thread's database
    connection for its next association if it is in a clean state."""
    batch = assoc.extra.get("batch")
    if batch is not None and batch.study_pks:
        batch.flush()
    keep_clean_database_connections()


def handle_rejected(assoc: AcceptedAssociation) -> None:
    reason = assoc.extra.get("rejected_because", "too many associations")
    log.warning("association rejected calling_ae=%s address=%s reason=%r", assoc.requestor.ae_title,
                assoc.requestor.address, reason)
    try:
        record(Action.ASSOCIATION, ae_title=assoc.requestor.ae_title, address=assoc.requestor.address,
               target=f"association to {assoc.ae_title}", outcome=JournalOutcome.DENIED, detail=f"rejected: {reason}")
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


SERVICES = {
    commands.C_ECHO_RQ: handle_echo,
    commands.C_STORE_RQ: handle_store,
    **qr.SERVICES,
}


def acceptor_settings(ae_title: str, temp_folder: Path) -> AcceptorSettings:
    return AcceptorSettings(
        ae_title=ae_title,
        contexts=supported_contexts(),
        services=SERVICES,
        max_pdu=settings.PACS_MAX_PDU,
        acse_timeout=30,
        network_timeout=60,
        accepts_calling_ae=accepts_calling_ae,
        open_store_file=open_store_file(temp_folder),
        on_established=handle_established,
        on_finished=handle_finished,
        on_rejected=handle_rejected,
    )


# --- Running ----------------------------------------------------------------------------------------


def prepare_temp_folder() -> Path:
    """The storage's temp folder, where received data sets are written (so that storing them
    is a rename on one filesystem), cleared of files left there by a crash."""
    folder = storage.temp_dir(storage.default_location())
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in folder.iterdir():
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass
    return folder


def start_server(ae_title: str, port: int, host: str = "0.0.0.0", listen_fd: int | None = None) -> DicomServer:
    """Start a non-blocking SCP (used by `runscp` and by the tests)."""
    folder = prepare_temp_folder()
    connections.close_all()  # each association thread opens its own connection
    server = DicomServer((host, port), acceptor_settings(ae_title, folder), listen_fd=listen_fd)
    thread = threading.Thread(target=server.serve_forever, name=f"scp-{ae_title}-{port}", daemon=True)
    thread.start()
    log.info("dicom scp listening ae=%s port=%d max_pdu=%d", ae_title, port, settings.PACS_MAX_PDU)
    return server


def stop_server(server: DicomServer, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop accepting, let running associations finish for a while, then abort the rest."""
    server.shutdown()
    deadline = time.monotonic() + grace_seconds
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.1)
    for assoc in list(server.active_associations):
        assoc.abort()


def serve_until_signalled(ae_title: str, port: int, listen_fd: int | None = None) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start_server(ae_title, port, listen_fd=listen_fd)
    stop.wait()
    log.info("dicom scp stopping ae=%s port=%d pid=%d", ae_title, port, os.getpid())
    stop_server(server)
