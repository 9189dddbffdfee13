"""The requestor's association PDUs (requestor.py), through pynetdicom's PDU classes, and how
both sides find an agreed context. The acceptor reads requests and answers them itself
(association_request.py)."""

from pydicom.uid import UID
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)

from . import wire
from .implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"


def new_primitive(calling_ae: str, called_ae: str) -> A_ASSOCIATE:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID(APPLICATION_CONTEXT)
    primitive.calling_ae_title = calling_ae
    primitive.called_ae_title = called_ae
    return primitive


def user_information(max_pdu: int) -> list:
    """Our maximum PDU length and implementation, as both sides announce them."""
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    return [max_length, class_uid, version]


def encoded(pdu_class, primitive: A_ASSOCIATE) -> bytes:
    pdu = pdu_class()
    pdu.from_primitive(primitive)
    return pdu.encode()


def decoded(pdu_class, pdu_type: int, body: memoryview) -> A_ASSOCIATE:
    """The primitive of a PDU whose body wire.Connection.read_pdu() returned; ProtocolError
    when pynetdicom cannot make sense of it (it raises whatever its parsing hits: ValueError,
    KeyError, UnicodeDecodeError, AssertionError...)."""
    pdu = pdu_class()
    try:
        pdu.decode(wire.pdu_bytes(pdu_type, body))
        return pdu.to_primitive()
    except Exception as error:
        raise wire.ProtocolError(f"malformed {pdu_class.__name__.replace('_', '-')} PDU: "
                                 f"{type(error).__name__}: {str(error)[:120]}") from None


def peer_max_pdu(primitive: A_ASSOCIATE) -> int:
    """The maximum PDU length the peer announced; 0 = no limit."""
    for item in primitive.user_information:
        if isinstance(item, MaximumLengthNotification):
            return item.maximum_length_received or 0
    return 0


def find_context(contexts, sop_class: str, transfer_syntaxes: list[str], as_scu: bool = False):
    """An accepted context for `sop_class` in the first of `transfer_syntaxes` found (one on which
    we may send requests when `as_scu`)."""
    for syntax in transfer_syntaxes:
        for context in contexts:
            if context.abstract_syntax == sop_class and context.transfer_syntax == syntax and (
                    context.as_scu or not as_scu):
                return context
    return None
