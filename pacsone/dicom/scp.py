"""The DICOM SCP: Verification and Storage, one process per worker, several workers per port.

Tuned for throughput (see the closing note of issue 3 and `make bench`):
- datasets are received straight into a file in the storage's temp folder
  (pynetdicom's STORE_RECV_CHUNKED_DATASET) and the ingest path renames that file into place,
  so pixel data is never decoded nor copied in memory;
- a large maximum PDU, so an image arrives in a few reads;
- TCP_NODELAY on every association's socket;
- several worker processes accepting from one listening socket (opened by the supervisor),
  so associations spread over the CPUs.
"""

import copy
import logging
import os
import signal
import socket
import threading
import time
import weakref
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import ALL_TRANSFER_SYNTAXES, AE, AllStoragePresentationContexts, _config, dimse_messages, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from .. import storage
from ..ingest import IngestResult, Origin, Outcome, PostIngestBatch, ingest_file
from . import qr, registry, status
from .dimse_fast import install_file_meta_writer
from .transport import EventDrivenAssociation

log = logging.getLogger(__name__)

# Receive C-STORE data sets into a temp file instead of decoding them in memory.
_config.STORE_RECV_CHUNKED_DATASET = True
# pynetdicom's standard handlers format a log line for every PDU and DIMSE message, whatever
# the log level; we log each association and instance ourselves.
_config.LOG_HANDLER_LEVEL = "none"
# The File Meta Information written in front of each received data set: struct, not pydicom.
install_file_meta_writer()

STALE_TEMP_SECONDS = 24 * 3600
SHUTDOWN_GRACE_SECONDS = 10
BUSY_ACCEPT_DELAY_SECONDS = 0.005  # per association a worker serves, up to BUSY_ACCEPT_MAX_STEPS
BUSY_ACCEPT_MAX_STEPS = 4

STATUS_FOR_OUTCOME = {
    Outcome.STORED: status.SUCCESS,
    Outcome.REPLACED: status.SUCCESS,
    Outcome.IGNORED: status.SUCCESS,
    Outcome.INVALID: status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
    Outcome.UNREADABLE: status.CANNOT_UNDERSTAND,
    Outcome.FAILED: status.OUT_OF_RESOURCES,
}


class ArchiveAE(AE):
    """An AE whose calling-AE policy is read from the registry at each association."""

    @property
    def require_calling_aet(self) -> list[str]:
        if settings.PACS_ACCEPT_CALLING_AE != "registered":
            return []
        # A non-empty list that no real AE title matches rejects everyone while none is registered.
        return registry.registered_ae_titles() or [""]


class TunedAssociationServer(ThreadedAssociationServer):
    """An SCP worker's server. Under `runpacs` every worker of a port accepts from one listening
    socket that the supervisor opened and passed down (`listen_fd`): an idle worker picks up the
    next association first, so work spreads evenly. Started alone, it binds the port itself
    with SO_REUSEPORT. Nagle is turned off on every association. A worker that is busy lets
    idle workers accept first."""

    def __init__(self, *args, listen_fd: int | None = None, **kwargs):
        self.listen_fd = listen_fd
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        super().__init__(*args, **kwargs)

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


class BufferedAssociationSocket(AssociationSocket):
    """Reads a PDU with as few recv() calls as the network allows, into one buffer
    (pynetdicom reads 4 kB at a time: 32 calls and copies for a 128 kB PDU)."""

    def recv(self, nr_bytes: int) -> bytearray:
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        nr_read = 0
        while nr_read < nr_bytes:
            received = self.socket.recv_into(view[nr_read:])
            if received == 0:  # connection closed: return what arrived, as pynetdicom does
                return buffer[:nr_read]
            nr_read += received
        return buffer


class TunedRequestHandler(RequestHandler):
    def _create_association(self):
        assoc = super()._create_association()
        assoc.dul.socket.__class__ = BufferedAssociationSocket  # same state, faster recv()
        # pynetdicom's threads poll with 1 ms naps; ours block until there is work (transport.py).
        return EventDrivenAssociation.install(assoc)


class CheaplyCopiedContext(PresentationContext):
    """pynetdicom deep-copies the SCP's presentation contexts for every association: for our
    ~170 contexts of 45 transfer syntaxes that took tens of milliseconds per association.
    UIDs are immutable strings, so copying the list of syntaxes is a complete copy."""

    def __deepcopy__(self, memo):
        clone = copy.copy(self)
        clone._transfer_syntax = list(self._transfer_syntax)
        return clone


def preferred_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pynetdicom knows, so that compressed data is accepted and stored
    as it was sent. Where a peer offers several in one context, pynetdicom picks the first of
    ours: Explicit VR Little Endian first (private elements keep their VR), Implicit last."""
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


def build_ae(ae_title: str) -> ArchiveAE:
    ae = ArchiveAE(ae_title=ae_title)
    ae.maximum_pdu_size = settings.PACS_MAX_PDU
    ae.network_timeout = 60
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    ae.maximum_associations = 64
    return ae


# --- Handlers -----------------------------------------------------------------------------------


def _batch(assoc) -> PostIngestBatch:
    batch = getattr(assoc, "pacs_batch", None)
    if batch is None:
        batch = assoc.pacs_batch = PostIngestBatch()
    return batch


def failure_status(code: int, reason: str) -> Dataset:
    rsp = Dataset()
    rsp.Status = code
    rsp.ErrorComment = reason[:64]
    return rsp


def status_for(result: IngestResult) -> int | Dataset:
    code = STATUS_FOR_OUTCOME[result.outcome]
    if code == status.SUCCESS:
        return code
    return failure_status(code, result.reason)


def handle_store(event) -> int | Dataset:
    """C-STORE: hand the received file to the one ingest path; answer only after it returns."""
    assoc = event.assoc
    calling_ae = assoc.requestor.ae_title
    if settings.PACS_ACCEPT_CALLING_AE == "registered" and not registry.may_store(calling_ae):
        event.dataset_path.unlink(missing_ok=True)
        return failure_status(status.NOT_AUTHORIZED, f"{calling_ae} may not store here")
    origin = Origin("dicom", ae_title=calling_ae, address=assoc.requestor.address)
    received = event.request._dataset_file
    if not isinstance(received, storage.IncomingFile):
        received = None
    result = ingest_file(event.dataset_path, origin, adopt=True, batch=_batch(assoc), received=received)
    return status_for(result)


def handle_established(event) -> None:
    close_old_connections()
    requestor = event.assoc.requestor
    log.info("association established calling_ae=%s address=%s", requestor.ae_title, requestor.address)


def handle_finished(event) -> None:
    """Released, aborted or dropped: queue the follow-up work (once: the batch empties) and
    release this thread's database connection."""
    assoc = event.assoc
    batch = getattr(assoc, "pacs_batch", None)
    if batch is not None and batch.study_pks:
        batch.flush()
    connections.close_all()


def handle_rejected(event) -> None:
    log.warning("association rejected calling_ae=%s address=%s", event.assoc.requestor.ae_title,
                event.assoc.requestor.address)
    connections.close_all()  # the calling-AE check may have opened one


HANDLERS = [
    (evt.EVT_C_STORE, handle_store),
    *qr.HANDLERS,
    (evt.EVT_ESTABLISHED, handle_established),
    (evt.EVT_RELEASED, handle_finished),
    (evt.EVT_ABORTED, handle_finished),
    (evt.EVT_CONN_CLOSE, handle_finished),  # also a peer that just drops the connection
    (evt.EVT_REJECTED, handle_rejected),
]


# --- Running ----------------------------------------------------------------------------------------


def prepare_temp_folder() -> Path:
    """Point pynetdicom's received-dataset files at the storage's temp folder (so that storing
    them is a rename on one filesystem) and clear files left there by a crash."""
    folder = storage.temp_dir(storage.default_location())
    folder.mkdir(parents=True, exist_ok=True)
    # pynetdicom has no option for this folder; it calls the NamedTemporaryFile it imported.
    # Ours hashes what it writes, so that the ingest need not read the file again.
    dimse_messages.NamedTemporaryFile = lambda suffix=".dcm", **_: storage.IncomingFile(folder, suffix)
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in folder.iterdir():
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass
    return folder


def start_server(
    ae_title: str, port: int, host: str = "0.0.0.0", listen_fd: int | None = None
) -> TunedAssociationServer:
    """Start a non-blocking SCP (used by `runscp` and by the tests)."""
    prepare_temp_folder()
    connections.close_all()  # each association thread opens its own connection
    ae = build_ae(ae_title)
    server = ae.make_server(
        (host, port),
        ae_title=ae_title,
        contexts=supported_contexts(),
        evt_handlers=HANDLERS,
        server_class=TunedAssociationServer,
        request_handler=TunedRequestHandler,
        listen_fd=listen_fd,
    )
    ae._servers.append(server)  # as AE.start_server() does; server.shutdown() expects it
    thread = threading.Thread(target=server.serve_forever, name=f"scp-{ae_title}-{port}", daemon=True)
    thread.start()
    log.info("dicom scp listening ae=%s port=%d max_pdu=%d", ae_title, port, settings.PACS_MAX_PDU)
    return server


def stop_server(server: TunedAssociationServer, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop accepting, let running associations finish for a while, then abort the rest."""
    server.shutdown()
    deadline = time.monotonic() + grace_seconds
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.1)
    for assoc in server.active_associations:
        assoc.abort()


def serve_until_signalled(ae_title: str, port: int, listen_fd: int | None = None) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start_server(ae_title, port, listen_fd=listen_fd)
    stop.wait()
    log.info("dicom scp stopping ae=%s port=%d pid=%d", ae_title, port, os.getpid())
    stop_server(server)
