"""One accepted DICOM association, served on one thread (the SCP's engine).

pynetdicom serves an association with two threads (network and service) that hand every PDU
and every message to each other through queues, with a state machine and several pydicom
Datasets per message. At hundreds of C-STOREs or C-FIND answers per second that machinery cost
more than the work itself (see docs/benchmarks.md). Here the association's thread reads its
socket, assembles each DIMSE message, calls the service for it and writes the answers itself.

pynetdicom still decodes the A-ASSOCIATE-RQ, negotiates the presentation contexts and roles and
encodes the A-ASSOCIATE-AC: that happens once per association and is pynetdicom's proven code.
"""

import logging
import socket
from dataclasses import dataclass, field
from io import BytesIO
from typing import Callable

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC as AssociateAcceptPDU
from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPDU
from pynetdicom.pdu_primitives import A_ASSOCIATE, SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor

from . import commands, negotiation, wire

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 9.3.4
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_TOO_MANY = (0x02, 0x03, 0x02)


class AssociationEnded(Exception):
    """The peer aborted, released in the middle of an operation, or the connection broke."""


@dataclass(frozen=True)
class AcceptedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntax: UID
    as_scu: bool  # we may send requests of this SOP class on it (C-GET's C-STOREs)
    as_scp: bool


@dataclass
class Message:
    """One received DIMSE request: its command set and its data set (bytes, or a file that a
    C-STORE's data set was written to)."""

    context: AcceptedContext
    command: dict
    data: bytes | None = None
    file: object | None = None  # storage.IncomingFile

    @property
    def field(self) -> int:
        return self.command[commands.COMMAND_FIELD]

    @property
    def message_id(self) -> int:
        return self.command.get(commands.MESSAGE_ID, 0)

    @property
    def sop_class(self) -> str:
        return self.command.get(commands.AFFECTED_SOP_CLASS_UID, "")

    def identifier(self) -> Dataset:
        """The request's data set decoded (C-FIND/C-MOVE/C-GET identifiers are small)."""
        syntax = self.context.transfer_syntax
        ds = read_dataset(BytesIO(self.data or b""), syntax.is_implicit_VR, syntax.is_little_endian)
        ds.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian, None)
        return ds


@dataclass
class AcceptorSettings:
    ae_title: str
    contexts: list[PresentationContext]  # what we accept, with the roles we allow
    services: dict[int, Callable]  # Command Field -> service(assoc, message)
    max_pdu: int
    acse_timeout: float = 30
    network_timeout: float = 60
    # Called with the association (its requestor's AE title and address are known by then).
    accepts_calling_ae: Callable[["AcceptedAssociation"], bool] = lambda _assoc: True
    open_store_file: Callable = lambda _context, _command: None  # where a C-STORE's data set goes
    on_established: Callable = lambda _assoc: None
    on_finished: Callable = lambda _assoc: None
    on_rejected: Callable = lambda _assoc: None


@dataclass
class Requestor:
    ae_title: str = ""
    address: str = ""
    port: int = 0


class AcceptedAssociation:
    """Serve one association on the calling thread: negotiate, then answer messages until the
    peer releases or aborts (or goes quiet for the network timeout)."""

    def __init__(self, sock: socket.socket, address: tuple, settings: AcceptorSettings,
                 too_many: Callable[[], bool] = lambda: False):
        self.settings = settings
        self.connection = wire.Connection(sock, settings.max_pdu)
        self.requestor = Requestor(address=address[0], port=address[1])
        self.ae_title = settings.ae_title
        self.contexts: dict[int, AcceptedContext] = {}
        self.is_established = False
        self._too_many = too_many
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
        except socket.timeout:
            log.warning("association idle for %ss: aborting calling_ae=%s", self.settings.network_timeout,
                        self.requestor.ae_title)
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
        sock = self.connection.sock
        sock.settimeout(self.settings.acse_timeout)
        pdu_type, body = self.connection.read_pdu()
        if pdu_type != wire.A_ASSOCIATE_RQ:
            raise wire.ProtocolError(f"expected A-ASSOCIATE-RQ, got PDU type 0x{pdu_type:02x}")
        rq = negotiation.decoded(AssociateRequestPDU, pdu_type, body)
        self.requestor.ae_title = rq.calling_ae_title
        self.connection.peer_max = negotiation.peer_max_pdu(rq)

        rejection = None
        if not self.settings.accepts_calling_ae(self):
            rejection = REJECT_CALLING_AE
        elif self._too_many():
            rejection = REJECT_TOO_MANY
        if rejection:
            self.connection.send_pdu(wire.A_ASSOCIATE_RJ, bytes([0, *rejection]))
            self.settings.on_rejected(self)
            self._await_close()
            return False

        roles = {item.sop_class_uid: (item.scu_role, item.scp_role) for item in rq.user_information
                 if isinstance(item, SCP_SCU_RoleSelectionNegotiation)}
        results, ac_roles = negotiate_as_acceptor(rq.presentation_context_definition_list, self.settings.contexts,
                                                  roles)
        for context in results:
            if context.result == 0x00:
                self.contexts[context.context_id] = AcceptedContext(
                    context.context_id, str(context.abstract_syntax), UID(context.transfer_syntax[0]),
                    bool(context.as_scu), bool(context.as_scp))
        self._send_accept(rq, results, ac_roles)
        sock.settimeout(self.settings.network_timeout)
        self.is_established = True
        self.settings.on_established(self)
        return True

    def _send_accept(self, rq: A_ASSOCIATE, results: list, ac_roles: list) -> None:
        primitive = negotiation.new_primitive(rq.calling_ae_title, rq.called_ae_title)
        primitive.result = 0x00
        primitive.result_source = 0x01
        primitive.presentation_context_definition_results_list = results
        primitive.user_information = [*negotiation.user_information(self.settings.max_pdu), *ac_roles]
        self.connection.sock.sendall(negotiation.encoded(AssociateAcceptPDU, primitive))

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
        """Read a PDU and act on it; False once the association has ended by a release."""
        pdu_type, body = self.connection.read_pdu()
        if pdu_type == wire.P_DATA_TF:
            self._take_pdata(body)
            return True
        if pdu_type == wire.A_RELEASE_RQ:
            if during_operation or self._partial is not None:
                raise wire.ProtocolError("A-RELEASE-RQ in the middle of a message or an operation")
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
                assembly = self._partial = Assembly(context)
            elif context_id != assembly.context.context_id:
                raise wire.ProtocolError("a message's fragments arrived on two presentation contexts")
            if control & wire.COMMAND:
                assembly.take_command(data, control & wire.LAST, self.settings.open_store_file)
            else:
                assembly.take_data(data, control & wire.LAST)
            if assembly.complete:
                self._partial = None
                message = assembly.message()
                if message.field == commands.C_CANCEL_RQ:
                    self._cancelled.add(message.command.get(commands.MESSAGE_ID_BEING_RESPONDED_TO, -1))
                else:
                    self._pending.append(message)

    def _discard_partial(self) -> None:
        if self._partial is not None:
            self._partial.discard()
            self._partial = None
        for message in self._pending:
            if message.file is not None:
                message.file.discard()
        self._pending.clear()

    def _dispatch(self, message: Message) -> None:
        service = self.settings.services.get(message.field)
        if service is None:
            log.warning("unsupported DIMSE command 0x%04x from calling_ae=%s", message.field,
                        self.requestor.ae_title)
            self.send_response(message, message.field | 0x8000, 0x0211)  # Unrecognized operation
            return
        service(self, message)

    # --- during an operation ------------------------------------------------------------------

    def is_cancelled(self, message: Message) -> bool:
        """Whether the peer sent C-CANCEL-RQ for `message` (reads what has arrived, no wait)."""
        while self.connection.has_pending_input() and message.message_id not in self._cancelled:
            self._read_one_pdu(during_operation=True)
        return message.message_id in self._cancelled

    def await_response(self, message_id: int) -> Message:
        """The next response to our request `message_id` (C-GET's C-STOREs); a C-CANCEL-RQ that
        arrives meanwhile is noted for is_cancelled()."""
        while True:
            for index, message in enumerate(self._pending):
                if message.command.get(commands.MESSAGE_ID_BEING_RESPONDED_TO) == message_id and message.field & 0x8000:
                    return self._pending.pop(index)
            self._read_one_pdu(during_operation=True)

    # --- sending ------------------------------------------------------------------------------

    def send_response(self, message: Message, field: int, status: int, dataset: bytes | None = None,
                      **extra) -> None:
        command = commands.response(field, message.command, status, data_set=dataset is not None, **extra)
        self.connection.send_message(message.context.context_id, command, dataset)

    def context_for(self, sop_class: str, transfer_syntaxes: list[str], as_scu: bool = False) -> AcceptedContext | None:
        return negotiation.find_context(self.contexts.values(), sop_class, transfer_syntaxes, as_scu)


@dataclass
class Assembly:
    """A message being received, fragment by fragment."""

    context: AcceptedContext
    command_bytes: bytearray = field(default_factory=bytearray)
    command: dict | None = None
    data: bytearray | None = None
    file: object | None = None
    complete: bool = False

    def take_command(self, fragment, last: bool, open_store_file) -> None:
        if self.command is not None:
            raise wire.ProtocolError("command fragment after the command set was complete")
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
            self.file.write(fragment)
            if last:
                self.file.finish()
        else:
            self.data += fragment
        if last:
            self.complete = True

    def message(self) -> Message:
        return Message(self.context, self.command or {}, bytes(self.data) if self.data is not None else None,
                       self.file)

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()
