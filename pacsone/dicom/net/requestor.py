"""An association we request to a C-MOVE destination, to send it C-STORE sub-operations (and,
for Storage Commitment, to send N-ACTION or N-EVENT-REPORT requests and read what comes back).

Like the acceptor it runs on the calling thread (the one serving the C-MOVE): pynetdicom encodes
the A-ASSOCIATE-RQ and decodes the answer, and the C-STOREs go straight over the socket.
"""

import socket

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC as AssociateAcceptPDU
from pynetdicom.pdu import A_ASSOCIATE_RJ as AssociateRejectPDU
from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPDU
from pynetdicom.presentation import PresentationContext

from . import commands, negotiation, wire
from .acceptor import AcceptedContext, Assembly, Message


class AssociationRefused(Exception):
    """The destination could not be reached, rejected us, or answered nonsense."""


class AssociationRejected(AssociationRefused):
    """The destination answered with an A-ASSOCIATE-RJ: `diagnosis` is its (result, source, reason)."""

    def __init__(self, called_ae: str, pdu: AssociateRejectPDU):
        super().__init__(rejection_message(called_ae, pdu))
        self.diagnosis = (pdu.result, pdu.source, pdu.reason_diagnostic)


def rejection_message(called_ae: str, pdu: AssociateRejectPDU) -> str:
    """For people: 'PACS2 rejected the association: Called AE title not recognised (permanent;
    result/source/reason 010107)'."""
    lasting = "permanent" if pdu.result == 0x01 else "transient: it may accept later"
    return (f"{called_ae} rejected the association: {rejection_reason(pdu)} ({lasting}; result/source/reason "
            f"{pdu.result:02x}{pdu.source:02x}{pdu.reason_diagnostic:02x})")


def rejection_reason(pdu: AssociateRejectPDU) -> str:
    """PS3.8's name of the reason ('Called AE title not recognised')."""
    try:
        return pdu.reason_str
    except (KeyError, ValueError):  # a source or reason PS3.8 does not define
        return "no known reason"


def _rejection(body: memoryview) -> AssociateRejectPDU:
    if len(body) != 4:  # reserved, result, source, reason (PS3.8 9.3.4)
        raise wire.ProtocolError(f"an A-ASSOCIATE-RJ of {len(body)} bytes, not 4")
    pdu = AssociateRejectPDU()
    pdu.decode(wire.pdu_bytes(wire.A_ASSOCIATE_RJ, body))
    return pdu


class NoContextAccepted(AssociationRefused):
    """The destination accepted the association but none of the proposed presentation contexts."""


class StoreAssociation:
    def __init__(self, host: str, port: int, calling_ae: str, called_ae: str, contexts: list[PresentationContext],
                 max_pdu: int, timeout: float = 30, roles: tuple = ()):
        self.host, self.port = host, port
        self.roles = list(roles)  # SCP/SCU role selection items to propose (pynetdicom's build_role)
        self.calling_ae, self.called_ae = calling_ae, called_ae
        self.proposed = contexts
        self.max_pdu = max_pdu
        self.timeout = timeout
        self.contexts: dict[int, AcceptedContext] = {}
        self.connection: wire.Connection | None = None

    def open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as error:
            raise AssociationRefused(f"{self.called_ae} at {self.host}:{self.port} cannot be reached: {error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection = wire.Connection(sock, self.max_pdu)
        try:
            self.connection.sock.sendall(self._request_pdu())
            pdu_type, body = self.connection.read_pdu()
            if pdu_type == wire.A_ASSOCIATE_RJ:
                raise AssociationRejected(self.called_ae, _rejection(body))
            if pdu_type != wire.A_ASSOCIATE_AC:
                raise AssociationRefused(f"{self.called_ae} answered PDU type 0x{pdu_type:02x}")
            self._take_accept(body)
        except AssociationRefused:
            self.connection.close()
            raise
        except (OSError, wire.ConnectionClosed, wire.ProtocolError) as error:
            self.connection.close()
            raise AssociationRefused(f"association with {self.called_ae} failed: {error}") from None
        if not self.contexts:
            self.release()
            raise NoContextAccepted(f"{self.called_ae} accepted none of the proposed presentation contexts")

    def _request_pdu(self) -> bytes:
        primitive = negotiation.new_primitive(self.calling_ae, self.called_ae)
        for number, context in enumerate(self.proposed):
            context.context_id = 2 * number + 1
        primitive.presentation_context_definition_list = self.proposed
        primitive.user_information = [*negotiation.user_information(self.max_pdu), *self.roles]
        return negotiation.encoded(AssociateRequestPDU, primitive)

    def _take_accept(self, body: memoryview) -> None:
        primitive = negotiation.decoded(AssociateAcceptPDU, wire.A_ASSOCIATE_AC, body)
        self.connection.peer_max = negotiation.peer_max_pdu(primitive)
        abstract = {context.context_id: context.abstract_syntax for context in self.proposed}
        for result in primitive.presentation_context_definition_results_list:
            if result.result == 0x00 and result.context_id in abstract and result.transfer_syntax:
                self.contexts[result.context_id] = AcceptedContext(
                    result.context_id, str(abstract[result.context_id]), UID(result.transfer_syntax[0]), True, False)

    def context_for(self, sop_class: str, transfer_syntaxes: list[str], as_scu: bool = True) -> AcceptedContext | None:
        return negotiation.find_context(self.contexts.values(), sop_class, transfer_syntaxes, as_scu)

    def await_response(self, message_id: int) -> Message:
        """The destination's response to our request `message_id` (C-STORE-RSP, N-ACTION-RSP, ...)."""
        while True:
            message = self.next_message()
            if message.field & 0x8000 and message.command.get(commands.MESSAGE_ID_BEING_RESPONDED_TO) == message_id:
                return message

    def next_message(self, wait: float | None = None) -> Message:
        """The next whole message the peer sends (a response, or a request such as a Storage
        Commitment N-EVENT-REPORT); with `wait`, TimeoutError when none began in that time."""
        assembly = None
        while True:
            try:
                if wait is not None and assembly is None:
                    pdu_type, body = self.connection.read_pdu(wait=wait, within=self.timeout)
                else:
                    pdu_type, body = self.connection.read_pdu()
            except wire.DeadlineExceeded:
                if assembly is None:
                    raise TimeoutError(f"{self.called_ae} sent nothing within {wait:g}s") from None
                raise AssociationRefused(f"{self.called_ae} stopped in the middle of a message") from None
            except (OSError, wire.ConnectionClosed) as error:
                raise AssociationRefused(f"{self.called_ae} went away: {error}") from None
            if pdu_type == wire.A_ABORT:
                raise AssociationRefused(f"{self.called_ae} aborted the association")
            if pdu_type != wire.P_DATA_TF:
                raise AssociationRefused(f"{self.called_ae} sent PDU type 0x{pdu_type:02x} instead of a message")
            for context_id, control, data in wire.iter_pdvs(body):
                context = self.contexts.get(context_id)
                if context is None:
                    raise AssociationRefused(f"{self.called_ae} answered on an unknown presentation context")
                assembly = assembly or Assembly(context)
                if control & wire.COMMAND:
                    assembly.take_command(data, control & wire.LAST, lambda *_: None)
                else:
                    assembly.take_data(data, control & wire.LAST)
                if assembly.complete:
                    return assembly.message()

    def release(self) -> None:
        if self.connection is None:
            return
        try:
            self.connection.send_pdu(wire.A_RELEASE_RQ, bytes(4))
            self.connection.sock.settimeout(5)
            while True:
                pdu_type, _ = self.connection.read_pdu()
                if pdu_type in (wire.A_RELEASE_RP, wire.A_ABORT):
                    break
        except (OSError, wire.ConnectionClosed, wire.ProtocolError):
            pass
        finally:
            self.connection.close()
            self.connection = None

    def abort(self) -> None:
        if self.connection is not None:
            self.connection.abort(0x00, 0x00)
            self.connection = None
