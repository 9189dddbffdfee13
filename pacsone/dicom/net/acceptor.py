"""One accepted DICOM association, served on one thread (the SCP's engine).

pynetdicom serves an association with two threads (network and service) that hand every PDU
and every message to each other through queues, with a state machine and several pydicom
Datasets per message. At hundreds of C-STOREs or C-FIND answers per second that machinery cost
more than the work itself (see docs/benchmarks.md). Here the association's thread reads its
socket, assembles each DIMSE message, calls the service for it and writes the answers itself.

The A-ASSOCIATE-RQ is decoded, negotiated and answered by association_request.py, to the same
rules as pynetdicom's (its tests compare both).
"""

import logging
import socket
from dataclasses import dataclass, field
from io import BytesIO
from typing import Callable

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID
from pynetdicom.presentation import PresentationContext

from . import association_request, commands, identifier_text, negotiation, status, wire
from .association_request import AssociateRequest, Supported

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 9.3.4
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)  # permanent, service user, called AE title not recognized
REJECT_TOO_MANY = (0x02, 0x03, 0x02)  # transient, service provider (presentation), local limit exceeded
REJECTION_DEADLINE_SECONDS = 2  # an association rejected for our load gets this long to ask
MAX_PENDING_MESSAGES = 8  # requests read ahead while one is served (PS3.7 allows 1 unless negotiated)
PENDING_STATUSES = {0xFF00, 0xFF01}


class AssociationEnded(Exception):
    """The peer aborted, released in the middle of an operation, or the connection broke."""


@dataclass(frozen=True)
class AcceptedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: UID
    as_scu: bool  # we may send requests of this SOP class on it (C-GET's C-STOREs)
    as_scp: bool
    by_policy: bool = False  # a storage SOP class we do not know, accepted for C-STORE only


@dataclass
class Message:
    """One received DIMSE request: its command set and its data set (bytes, or a file that a
    C-STORE's data set was written to)."""

    context: AcceptedContext
    command: dict
    data: bytes | None = None
    file: object | None = None  # storage.IncomingFile
    answered: bool = False  # its final response went out

    @property
    def field(self) -> int:
        return self.command[commands.COMMAND_FIELD]

    @property
    def message_id(self) -> int:
        return self.command.get(commands.MESSAGE_ID, 0)

    @property
    def sop_class(self) -> str:
        return self.command.get(commands.AFFECTED_SOP_CLASS_UID, "")

    @property
    def service_sop_class(self) -> str:
        """The SOP class the request asks a service of (Affected, or Requested for N- requests)."""
        return (self.command.get(commands.AFFECTED_SOP_CLASS_UID) or self.command.get(commands.REQUESTED_SOP_CLASS_UID)
                or self.context.abstract_syntax)

    def identifier(self) -> Dataset:
        """The request's data set decoded (C-FIND/C-MOVE/C-GET identifiers are small), every
        element of it: a broken one raises here, not later in whoever reads it."""
        syntax = self.context.transfer_syntax
        ds = read_dataset(BytesIO(self.data or b""), syntax.is_implicit_VR, syntax.is_little_endian)
        ds.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian, None)
        identifier_text.read_leniently(ds)  # UTF-8 text under no (0008,0005)
        decode_all(ds)
        return ds


# The services key for a C-STORE of a SOP class that is not in `contexts` but that
# `storage_context` accepted as a storage SOP class (a private or a newer standard one).
ANY_STORAGE_CLASS = "*"


def decode_all(ds: Dataset) -> None:
    """Convert every element, nested items included (pydicom converts them lazily, on first
    access, and a malformed one raises whatever its conversion hits)."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                decode_all(item)


@dataclass(frozen=True)
class Limits:
    """How large a received message may grow (a peer must not make a worker grow without end)."""

    command_bytes: int = 64 * 1024
    identifier_bytes: int = 1024 * 1024  # a data set held in memory (C-FIND/C-MOVE/C-GET identifiers)
    store_bytes: int = 8 << 30  # a data set written to a file as it arrives (C-STORE)


@dataclass
class AcceptorSettings:
    ae_title: str
    contexts: list[PresentationContext]  # what we accept, with the roles we allow
    # (Command Field, SOP Class UID) -> service(assoc, message); see ANY_STORAGE_CLASS
    services: dict[tuple[int, str], Callable]
    max_pdu: int
    acse_timeout: float = 30  # for the whole A-ASSOCIATE-RQ
    pdu_timeout: float = 60  # for each PDU once begun, and for the next PDU of a message begun
    idle_timeout: float = 120  # between messages, and for a peer's answer to our request
    limits: Limits = field(default_factory=Limits)
    # Called with the association (its requestor's AE title and address are known by then).
    accepts_calling_ae: Callable[["AcceptedAssociation"], bool] = lambda _assoc: True
    accepts_called_ae: Callable[[str], bool] = lambda _title: True
    # A context for a proposed abstract syntax that is not in `contexts`, or None to refuse it.
    storage_context: Callable[[str], PresentationContext | None] = lambda _uid: None
    # Where a C-STORE's data set goes: (context, command, calling AE title) -> storage.IncomingFile
    open_store_file: Callable = lambda _context, _command, _calling_ae: None
    on_established: Callable = lambda _assoc: None
    on_released: Callable = lambda _assoc: None  # the peer asked to release: before our A-RELEASE-RP
    on_finished: Callable = lambda _assoc: None
    on_rejected: Callable = lambda _assoc: None

    def __post_init__(self):
        self.supported = supported_by_abstract_syntax(self.contexts)
        self.known_commands = frozenset(command for command, _sop_class in self.services)
        self.negotiations = NegotiationCache()


def supported_by_abstract_syntax(contexts) -> dict[str, Supported]:
    """What association_request.negotiate() takes, from pynetdicom's contexts (as `AcceptorSettings`
    and the unknown-SOP-class policy give them). Where two name one abstract syntax, the last wins,
    as in pynetdicom's negotiation."""
    return {str(context.abstract_syntax): Supported(tuple(str(syntax) for syntax in context.transfer_syntax),
                                                    context.scu_role, context.scp_role)
            for context in contexts}


@dataclass(frozen=True)
class Negotiated:
    """What an A-ASSOCIATE-RQ's bytes give, whoever sends them: the decoded request and, when
    no context was accepted by policy, the accepted contexts and the A-ASSOCIATE-AC's bytes."""

    request: AssociateRequest
    contexts: dict | None = None  # context ID -> AcceptedContext
    accept: bytes | None = None


class NegotiationCache:
    """A-ASSOCIATE-RQ body -> Negotiated. A modality or a router sends the same request every
    time (storescu proposes ~128 contexts): decoding it, negotiating and encoding the answer cost
    ~0.6 ms of CPU (association_request.py; through pynetdicom it was ~10 ms, 25 under load).
    Only what follows from the bytes and the AcceptorSettings is kept; whether the caller may
    associate is decided every time. Bounded, per AcceptorSettings."""

    MAX_ENTRIES = 32
    MAX_BODY_BYTES = 64 * 1024

    def __init__(self):
        self._entries: dict[bytes, Negotiated] = {}

    def get(self, body: bytes) -> Negotiated | None:
        return self._entries.get(body)

    def put(self, body: bytes, negotiated: Negotiated) -> None:
        if len(body) > self.MAX_BODY_BYTES:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[body] = negotiated


@dataclass
class Requestor:
    ae_title: str = ""
    address: str = ""
    port: int = 0


class AcceptedAssociation:
    """Serve one association on the calling thread: negotiate, then answer messages until the
    peer releases or aborts (or misses a deadline: see AcceptorSettings). `rejection`: the
    A-ASSOCIATE-RJ (result, source, reason) to answer whatever is asked (our load)."""

    def __init__(self, sock: socket.socket, address: tuple, settings: AcceptorSettings,
                 rejection: tuple[int, int, int] | None = None):
        self.settings = settings
        self.connection = wire.Connection(sock, settings.max_pdu)
        self.connection.set_timeout(settings.pdu_timeout)
        self.requestor = Requestor(address=address[0], port=address[1])
        self.ae_title = settings.ae_title
        self.called_ae_title = ""
        self.rejection: tuple[int, int, int] | None = None  # A-ASSOCIATE-RJ result, source, reason
        self.contexts: dict[int, AcceptedContext] = {}
        self.is_established = False
        self._rejection = rejection
        self._partial: Assembly | None = None
        self._pending: list[Message] = []  # complete messages read while serving another
        self._cancelled: set[int] = set()  # message IDs a C-CANCEL-RQ named
        self.extra: dict = {}  # per-association state of the services (e.g. the ingest batch)
        self._after_reply: list[Callable[[], None]] = []

    # --- life cycle ---------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            if self._negotiate():
                self._serve_messages()
        except (wire.ConnectionClosed, AssociationEnded):
            pass
        except TimeoutError as error:  # wire.DeadlineExceeded, or a send that could not go out
            log.warning("association deadline missed: aborting calling_ae=%s address=%s reason=%s",
                        self.requestor.ae_title, self.requestor.address, error or "send timed out")
            self.connection.abort()
        except wire.ProtocolError as error:
            log.warning("protocol error from calling_ae=%s address=%s: %s", self.requestor.ae_title,
                        self.requestor.address, error)
            self.connection.abort(0x02, 0x00)
        except OSError as error:
            log.info("connection lost calling_ae=%s: %s", self.requestor.ae_title, error)
        except Exception:
            log.exception("association failed calling_ae=%s", self.requestor.ae_title)
            self.connection.abort()
        finally:
            self._discard_partial()
            self._run_after_reply()
            if self.is_established:
                self.is_established = False
                self.settings.on_finished(self)
            self.connection.close()

    def after_reply(self, work: Callable[[], None]) -> None:
        """Work that must not delay the peer's answer (a journal entry and its commit): done
        before the next request is served, or as soon as the association ends (for a findscu,
        after it got its A-RELEASE-RP)."""
        self._after_reply.append(work)

    def _run_after_reply(self) -> None:
        while self._after_reply:
            work = self._after_reply.pop(0)
            try:
                work()
            except Exception:
                log.exception("deferred work failed calling_ae=%s", self.requestor.ae_title)

    def abort(self) -> None:
        """From another thread (shutdown): end the association now."""
        self.connection.abort()

    def _negotiate(self) -> bool:
        within = REJECTION_DEADLINE_SECONDS if self._rejection else self.settings.acse_timeout
        pdu_type, body = self.connection.read_pdu(within=within)
        if pdu_type != wire.A_ASSOCIATE_RQ:
            raise wire.ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02x}")
        body = bytes(body)
        known = self.settings.negotiations.get(body)
        rq = known.request if known is not None else association_request.decode(body)
        self.requestor.ae_title = rq.calling_ae_title
        self.called_ae_title = rq.called_ae_title
        self.connection.peer_max = rq.max_pdu

        rejection = self._rejection
        if rejection is None and not self.settings.accepts_called_ae(rq.called_ae_title):
            rejection = REJECT_CALLED_AE
        elif rejection is None and not self.settings.accepts_calling_ae(self):
            rejection = REJECT_CALLING_AE
        if rejection:
            self.rejection = rejection
            self.connection.send_pdu(wire.A_ASSOCIATE_RJ, bytes([0, *rejection]))
            self.settings.on_rejected(self)
            self._await_close()
            return False

        by_policy = self._storage_by_policy(rq)
        if known is not None and known.accept is not None and not by_policy:
            self.contexts = dict(known.contexts)
            self.connection.sock.sendall(known.accept)
        else:
            supported = {**self.settings.supported, **supported_by_abstract_syntax(by_policy.values())}
            results, roles = association_request.negotiate(rq, supported)
            for result in results:
                if result.result == association_request.ACCEPTANCE:
                    self.contexts[result.context_id] = AcceptedContext(
                        result.context_id, result.abstract_syntax, UID(result.transfer_syntax), result.as_scu,
                        result.as_scp, result.abstract_syntax in by_policy)
            accept = association_request.encode_accept(rq, results, roles, self.settings.max_pdu)
            self.connection.sock.sendall(accept)
            # A context accepted by policy depends on settings read at each call: not kept.
            self.settings.negotiations.put(body, Negotiated(rq, dict(self.contexts), accept) if not by_policy
                                           else Negotiated(rq))
        self.is_established = True
        self.settings.on_established(self)
        return True

    def _storage_by_policy(self, rq: AssociateRequest) -> dict[str, PresentationContext]:
        """Contexts for the proposed abstract syntaxes we do not know that the policy takes as
        storage SOP classes."""
        extra = {}
        for context in rq.contexts:
            uid = context.abstract_syntax
            if uid not in self.settings.supported and uid not in extra:
                accepted = self.settings.storage_context(uid)
                if accepted is not None:
                    extra[uid] = accepted
        return extra

    def _await_close(self) -> None:
        """After a rejection: give the peer a moment to read it and close (PS3.8 ARTIM)."""
        try:
            self.connection.sock.settimeout(2)
            self.connection.sock.recv(1)
        except OSError:
            pass

    # --- receiving ----------------------------------------------------------------------------

    def _serve_messages(self) -> None:
        while True:
            if self._pending:
                message = self._pending.pop(0)
                self._run_after_reply()
                self._dispatch(message)
                continue
            if not self._read_one_pdu(during_operation=False):
                return

    def _read_one_pdu(self, during_operation: bool) -> bool:
        """Read a PDU and act on it; False once the association has ended by a release. Between
        messages the peer may stay quiet for the idle timeout; inside a message each PDU must
        come within the PDU timeout; a PDU once begun must arrive whole within the PDU timeout."""
        timeouts = self.settings
        if self._partial is None:
            pdu_type, body = self.connection.read_pdu(wait=timeouts.idle_timeout, within=timeouts.pdu_timeout)
        else:
            pdu_type, body = self.connection.read_pdu(within=timeouts.pdu_timeout)
        if pdu_type == wire.P_DATA_TF:
            self._take_pdata(body)
            return True
        if pdu_type == wire.A_RELEASE_RQ:
            if during_operation or self._partial is not None:
                raise wire.ProtocolError("A-RELEASE-RQ in the middle of a message or an operation")
            self.settings.on_released(self)
            self.connection.send_pdu(wire.A_RELEASE_RP, bytes(4))
            log.debug("association released calling_ae=%s", self.requestor.ae_title)
            return False
        if pdu_type == wire.A_ABORT:
            log.info("association aborted by calling_ae=%s", self.requestor.ae_title)
            raise AssociationEnded("A-ABORT")
        raise wire.ProtocolError(f"unexpected PDU type 0x{pdu_type:02x}")

    def _take_pdata(self, body: memoryview) -> None:
        for context_id, control, data in wire.iter_pdvs(body):
            assembly = self._partial
            if assembly is None:
                context = self.contexts.get(context_id)
                if context is None:
                    raise wire.ProtocolError(f"presentation context {context_id} was not accepted")
                assembly = self._partial = Assembly(context, self.settings.limits)
            elif context_id != assembly.context.context_id:
                raise wire.ProtocolError("a message's fragments arrived on two presentation contexts")
            if control & wire.COMMAND:
                assembly.take_command(data, control & wire.LAST, self._open_store_file)
            else:
                assembly.take_data(data, control & wire.LAST)
            if assembly.complete:
                self._partial = None
                message = assembly.message()
                if message.field == commands.C_CANCEL_RQ:
                    self._cancelled.add(message.command.get(commands.MESSAGE_ID_BEING_RESPONDED_TO, -1))
                else:
                    self._pending.append(message)
                    if len(self._pending) > MAX_PENDING_MESSAGES:
                        raise wire.ProtocolError(f"more than {MAX_PENDING_MESSAGES} requests outstanding")

    def _open_store_file(self, context: AcceptedContext, command: dict):
        return self.settings.open_store_file(context, command, self.requestor.ae_title)

    def _discard_partial(self) -> None:
        if self._partial is not None:
            self._partial.discard()
            self._partial = None
        for message in self._pending:
            if message.file is not None:
                message.file.discard()
        self._pending.clear()

    def _dispatch(self, message: Message) -> None:
        service = self._service_for(message)
        if service is None:
            known = message.field in self.settings.known_commands
            log.warning("unsupported DIMSE request command=0x%04x sop_class=%s calling_ae=%s", message.field,
                        message.service_sop_class, self.requestor.ae_title)
            if message.file is not None:
                message.file.discard()
            code = status.SOP_CLASS_NOT_SUPPORTED if known else status.UNRECOGNIZED_OPERATION
            self.send_response(message, message.field | 0x8000, code)
            return
        try:
            service(self, message)
        except (AssociationEnded, wire.ConnectionClosed, wire.ProtocolError, ConnectionError, TimeoutError):
            raise  # the association itself is over
        except Exception as error:
            if self.connection.sending_incomplete:
                raise  # a data set went out in part: only an abort can end that message
            self._answer_failure(message, error)

    def _answer_failure(self, message: Message, error: Exception) -> None:
        """A service raised: its temp file goes, the peer gets a failure status (PS3.4 allows
        0xC211 for every service), the association goes on."""
        log.exception("service failed command=0x%04x message_id=%d calling_ae=%s: answering 0x%04x",
                      message.field, message.message_id, self.requestor.ae_title, status.SERVICE_FAILED)
        if message.file is not None:
            message.file.discard()
        if not message.answered:
            extra = {}
            if commands.AFFECTED_SOP_INSTANCE_UID in message.command:
                extra["affected_sop_instance_uid"] = message.command[commands.AFFECTED_SOP_INSTANCE_UID]
            self.send_response(message, message.field | 0x8000, status.SERVICE_FAILED,
                               error_comment=f"internal error: {type(error).__name__}"[:64], **extra)

    def _service_for(self, message: Message) -> Callable | None:
        """The service registered for the request's command and SOP class; a C-STORE of a SOP
        class accepted by policy goes to the ANY_STORAGE_CLASS service."""
        sop_class = message.service_sop_class
        service = self.settings.services.get((message.field, sop_class))
        if (service is None and message.field == commands.C_STORE_RQ and message.context.by_policy
                and sop_class == message.context.abstract_syntax):
            service = self.settings.services.get((commands.C_STORE_RQ, ANY_STORAGE_CLASS))
        return service

    # --- during an operation ------------------------------------------------------------------

    def is_cancelled(self, message: Message) -> bool:
        """Whether the peer sent C-CANCEL-RQ for `message` (reads what has arrived, no wait)."""
        while self.connection.has_pending_input() and message.message_id not in self._cancelled:
            self._read_one_pdu(during_operation=True)
        return message.message_id in self._cancelled

    def await_response(self, message_id: int, release_ends_wait: bool = False) -> Message | None:
        """The next response to our request `message_id` (C-GET's C-STOREs, a Storage Commitment
        report); a C-CANCEL-RQ that arrives meanwhile is noted for is_cancelled(). With
        `release_ends_wait`, a peer that asks to release instead is answered and None returned."""
        while True:
            for index, message in enumerate(self._pending):
                if message.command.get(commands.MESSAGE_ID_BEING_RESPONDED_TO) == message_id and message.field & 0x8000:
                    return self._pending.pop(index)
            if release_ends_wait and self.release_if_asked():
                return None
            if not release_ends_wait:
                self._read_one_pdu(during_operation=True)

    def release_if_asked(self) -> bool:
        """Read the next PDU: an A-RELEASE-RQ is answered (True: the association is over);
        anything else is taken as usual (False)."""
        idle = self._partial is None and not self._pending
        return not self._read_one_pdu(during_operation=not idle)

    # --- sending ------------------------------------------------------------------------------

    def send_response(self, message: Message, field: int, status: int, dataset: bytes | None = None,
                      **extra) -> None:
        command = commands.response(field, message.command, status, data_set=dataset is not None, **extra)
        self.connection.send_message(message.context.context_id, command, dataset)
        if status not in PENDING_STATUSES:
            message.answered = True

    def context_for(self, sop_class: str, transfer_syntaxes: list[str], as_scu: bool = False) -> AcceptedContext | None:
        return negotiation.find_context(self.contexts.values(), sop_class, transfer_syntaxes, as_scu)


@dataclass
class Assembly:
    """A message being received, fragment by fragment."""

    context: AcceptedContext
    limits: Limits = field(default_factory=Limits)
    command_bytes: bytearray = field(default_factory=bytearray)
    command: dict | None = None
    data: bytearray | None = None
    file: object | None = None
    complete: bool = False

    def take_command(self, fragment, last: bool, open_store_file) -> None:
        if self.command is not None:
            raise wire.ProtocolError("command fragment after the command set was complete")
        if len(self.command_bytes) + len(fragment) > self.limits.command_bytes:
            raise wire.MessageTooLarge(f"a command set over the limit of {self.limits.command_bytes} bytes")
        self.command_bytes += fragment
        if not last:
            return
        try:
            self.command = commands.decode(self.command_bytes)
        except commands.CommandError as error:
            raise wire.ProtocolError(str(error)) from None
        if self.command.get(commands.COMMAND_DATA_SET_TYPE, commands.NO_DATA_SET) == commands.NO_DATA_SET:
            self.complete = True
        elif self.command[commands.COMMAND_FIELD] == commands.C_STORE_RQ:
            self.file = open_store_file(self.context, self.command)
        if not self.complete and self.file is None:
            self.data = bytearray()

    def take_data(self, fragment, last: bool) -> None:
        if self.command is None:
            raise wire.ProtocolError("data set fragment before the command set was complete")
        if self.file is not None:
            if self.file.size + len(fragment) > self.limits.store_bytes:
                raise wire.MessageTooLarge(f"a C-STORE data set over the limit of {self.limits.store_bytes} bytes")
            self.file.write(fragment)
            if last:
                self.file.finish()
        else:
            if len(self.data) + len(fragment) > self.limits.identifier_bytes:
                raise wire.MessageTooLarge(f"a data set over the limit of {self.limits.identifier_bytes} bytes "
                                           f"(command 0x{self.command[commands.COMMAND_FIELD]:04x})")
            self.data += fragment
        if last:
            self.complete = True

    def message(self) -> Message:
        return Message(self.context, self.command or {}, bytes(self.data) if self.data is not None else None,
                       self.file)

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()
