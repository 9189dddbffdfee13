"""The acceptor's side of association set-up (PS3.8 9.3.2-9.3.3, PS3.7 D.3.3.4): decode an
A-ASSOCIATE-RQ, negotiate its presentation contexts and SCP/SCU roles, encode the A-ASSOCIATE-AC.

pynetdicom did this through its PDU, item and primitive classes, which validate every UID as they
are built: 6-8 ms of CPU for storescu's 128 proposed contexts, 25 ms under load, paid by every
association whose request the worker had not seen yet (docs/decisions/association-negotiation.md).
The same rules here are plain struct work. tests/pacsone/dicom/test_association_request.py holds
them to pynetdicom's (same decoded request, same accept bytes) on real and generated requests.
"""

import struct
from dataclasses import dataclass, field

from pynetdicom.presentation import SCP_SCU_ROLES

from . import wire
from .implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .negotiation import APPLICATION_CONTEXT

FIXED_FIELDS = 68  # protocol version, reserved, called and calling AE titles, reserved (PS3.8 9.3.2)

# Item types (PS3.8 9.3.2 and Annex D)
APPLICATION_CONTEXT_ITEM = 0x10
CONTEXT_RQ_ITEM = 0x20
CONTEXT_AC_ITEM = 0x21
ABSTRACT_SYNTAX_ITEM = 0x30
TRANSFER_SYNTAX_ITEM = 0x40
USER_INFORMATION_ITEM = 0x50
MAXIMUM_LENGTH_ITEM = 0x51
IMPLEMENTATION_CLASS_ITEM = 0x52
ROLE_SELECTION_ITEM = 0x54
IMPLEMENTATION_VERSION_ITEM = 0x55

# Presentation context results (PS3.8 9.3.3.2)
ACCEPTANCE = 0x00
USER_REJECTION = 0x01
ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03
TRANSFER_SYNTAXES_NOT_SUPPORTED = 0x04

_ITEM_HEADER = struct.Struct(">BxH")
_UINT16 = struct.Struct(">H")
_UINT32 = struct.Struct(">L")


@dataclass(frozen=True)
class ProposedContext:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass
class AssociateRequest:
    calling_ae_title: str
    called_ae_title: str
    application_context_name: str = ""
    contexts: list[ProposedContext] = field(default_factory=list)
    max_pdu: int = 0  # the requestor's Maximum Length Received; 0 = no limit (or not sent)
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # SOP class -> (SCU, SCP) proposed


@dataclass(frozen=True)
class Supported:
    """What we accept for one abstract syntax: transfer syntaxes in our order of preference and
    the roles we allow (None: we take the default roles and answer no role selection)."""

    transfer_syntaxes: tuple[str, ...]
    scu_role: bool | None = None
    scp_role: bool | None = None


@dataclass(frozen=True)
class ContextResult:
    context_id: int
    abstract_syntax: str
    result: int
    transfer_syntax: str  # the one accepted; for a refused context, the first proposed
    as_scu: bool = False  # we may act as SCU on it: send requests (C-GET's C-STOREs)
    as_scp: bool = False  # we act as SCP on it: answer the requestor's requests


def decode(body: bytes) -> AssociateRequest:
    """The A-ASSOCIATE-RQ whose PDU body (after the 6-byte PDU header) is `body`; ProtocolError
    when it is not one."""
    if len(body) < FIXED_FIELDS:
        raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: {len(body)} bytes, fewer than {FIXED_FIELDS}")
    request = AssociateRequest(called_ae_title=_ae_title(body[4:20], "called"),
                               calling_ae_title=_ae_title(body[20:36], "calling"))
    seen_ids = set()
    for item_type, value in _items(body, FIXED_FIELDS, "A-ASSOCIATE-RQ"):
        if item_type == APPLICATION_CONTEXT_ITEM:
            request.application_context_name = _uid(value, "application context name")
        elif item_type == CONTEXT_RQ_ITEM:
            context = _proposed_context(value)
            if context.context_id in seen_ids:
                raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: presentation context ID "
                                         f"{context.context_id} proposed twice")
            seen_ids.add(context.context_id)
            request.contexts.append(context)
        elif item_type == USER_INFORMATION_ITEM:
            _user_information(value, request)
        # Other item types are not defined for an A-ASSOCIATE-RQ: ignored (PS3.8 9.3.1).
    return request


def _items(data: bytes, offset: int, what: str):
    """(item type, value) of each item of `data` from `offset` on."""
    end = len(data)
    while offset < end:
        if end - offset < _ITEM_HEADER.size:
            raise wire.ProtocolError(f"malformed {what} PDU: {end - offset} stray bytes after its last item")
        item_type, length = _ITEM_HEADER.unpack_from(data, offset)
        offset += _ITEM_HEADER.size
        if offset + length > end:
            raise wire.ProtocolError(f"malformed {what} PDU: item 0x{item_type:02X} of {length} bytes runs past "
                                     f"its end")
        yield item_type, data[offset:offset + length]
        offset += length


def _proposed_context(value: bytes) -> ProposedContext:
    if len(value) < 4:
        raise wire.ProtocolError("malformed A-ASSOCIATE-RQ PDU: a presentation context item of "
                                 f"{len(value)} bytes")
    context_id = value[0]
    if context_id % 2 == 0:  # odd, 1-255 (PS3.8 9.3.2.2)
        raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: presentation context ID {context_id} is even")
    abstract_syntax, transfer_syntaxes = None, []
    for item_type, sub_value in _items(value, 4, "A-ASSOCIATE-RQ"):
        if item_type == ABSTRACT_SYNTAX_ITEM:
            abstract_syntax = _uid(sub_value, "abstract syntax")
        elif item_type == TRANSFER_SYNTAX_ITEM:
            transfer_syntaxes.append(_uid(sub_value, "transfer syntax"))
    if not abstract_syntax or not transfer_syntaxes:
        raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: presentation context {context_id} needs an "
                                 "abstract syntax and a transfer syntax")
    return ProposedContext(context_id, abstract_syntax, tuple(transfer_syntaxes))


def _user_information(value: bytes, request: AssociateRequest) -> None:
    for item_type, sub_value in _items(value, 0, "A-ASSOCIATE-RQ"):
        if item_type == MAXIMUM_LENGTH_ITEM and len(sub_value) == 4:
            request.max_pdu = _UINT32.unpack(sub_value)[0]
        elif item_type == IMPLEMENTATION_CLASS_ITEM:
            request.implementation_class_uid = _uid(sub_value, "implementation class UID")
        elif item_type == IMPLEMENTATION_VERSION_ITEM:
            request.implementation_version_name = _text(sub_value, "implementation version name")
        elif item_type == ROLE_SELECTION_ITEM:
            if len(sub_value) < 4 or _UINT16.unpack_from(sub_value)[0] != len(sub_value) - 4:
                raise wire.ProtocolError("malformed A-ASSOCIATE-RQ PDU: an SCP/SCU role selection item of "
                                         f"{len(sub_value)} bytes")
            sop_class = _uid(sub_value[2:-2], "role selection SOP class")
            request.roles[sop_class] = (bool(sub_value[-2]), bool(sub_value[-1]))
        # Asynchronous operations, extended negotiation, user identity: not taken up (PS3.7 D.3.3).


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: its {what} is not ASCII") from None


def _uid(value: bytes, what: str) -> str:
    return _text(value, what).rstrip("\0 ")


def _ae_title(value: bytes, which: str) -> str:
    """An AE title field: ASCII, without control characters or backslashes (PS3.5 AE);
    leading and trailing spaces (and the NULs some devices pad with) are not significant."""
    title = _text(value, f"{which} AE title").strip(" \0")
    if "\\" in title or any(ord(character) < 0x20 or ord(character) == 0x7F for character in title):
        raise wire.ProtocolError(f"malformed A-ASSOCIATE-RQ PDU: its {which} AE title {title!r} holds a "
                                 "control character or a backslash")
    return title


# --- Negotiation ---------------------------------------------------------------------------------


def negotiate(request: AssociateRequest, supported: dict[str, Supported]) -> tuple[list[ContextResult], list]:
    """Each proposed context's result, by context ID, and the SCP/SCU role selection items to
    answer ((SOP class, SCU role, SCP role), by SOP class). As PS3.7 D.3.3.4 and pynetdicom's
    negotiate_as_acceptor: our first transfer syntax that the requestor proposed is taken."""
    results, reply_roles = [], {}
    for proposed in sorted(request.contexts, key=lambda context: context.context_id):
        ours = supported.get(proposed.abstract_syntax)
        if ours is None:
            results.append(ContextResult(proposed.context_id, proposed.abstract_syntax,
                                         ABSTRACT_SYNTAX_NOT_SUPPORTED, proposed.transfer_syntaxes[0]))
            continue
        syntax = next((s for s in ours.transfer_syntaxes if s in proposed.transfer_syntaxes), None)
        if syntax is None:
            results.append(ContextResult(proposed.context_id, proposed.abstract_syntax,
                                         TRANSFER_SYNTAXES_NOT_SUPPORTED, proposed.transfer_syntaxes[0]))
            continue
        proposed_roles = request.roles.get(proposed.abstract_syntax)
        if ours.scu_role is None or ours.scp_role is None:  # default roles, no role selection answered
            as_scu, as_scp, answer_role = False, True, False
        else:
            outcome = SCP_SCU_ROLES[proposed_roles or (None, None)][(ours.scu_role, ours.scp_role)]
            as_scu, as_scp, answer_role = outcome[2], outcome[3], proposed_roles is not None
        if not as_scu and not as_scp:
            results.append(ContextResult(proposed.context_id, proposed.abstract_syntax, USER_REJECTION, syntax))
            continue
        results.append(ContextResult(proposed.context_id, proposed.abstract_syntax, ACCEPTANCE, syntax,
                                     as_scu, as_scp))
        if answer_role:  # a role proposed as 0 cannot be answered as 1
            reply_roles[proposed.abstract_syntax] = (
                proposed.abstract_syntax,
                ours.scu_role if proposed_roles[0] is not False else False,
                ours.scp_role if proposed_roles[1] is not False else False,
            )
    return results, [reply_roles[uid] for uid in sorted(reply_roles)]


# --- Encoding the A-ASSOCIATE-AC ------------------------------------------------------------------


def encode_accept(request: AssociateRequest, results: list[ContextResult], roles: list, max_pdu: int) -> bytes:
    """The whole A-ASSOCIATE-AC PDU (PS3.8 9.3.3): the request's AE titles sent back, the results,
    our maximum PDU length, implementation class UID and version name, the role answers."""
    parts = [
        b"\x00\x01\x00\x00",  # protocol version 1, reserved
        _padded_title(request.called_ae_title), _padded_title(request.calling_ae_title), bytes(32),
        _item(APPLICATION_CONTEXT_ITEM, APPLICATION_CONTEXT.encode()),
    ]
    for result in results:
        parts.append(_item(CONTEXT_AC_ITEM, bytes([result.context_id, 0, result.result, 0])
                           + _item(TRANSFER_SYNTAX_ITEM, result.transfer_syntax.encode())))
    user_items = [
        _item(MAXIMUM_LENGTH_ITEM, _UINT32.pack(max_pdu)),
        _item(IMPLEMENTATION_CLASS_ITEM, IMPLEMENTATION_CLASS_UID.encode()),
        _item(IMPLEMENTATION_VERSION_ITEM, IMPLEMENTATION_VERSION_NAME.encode()),
    ]
    for sop_class, scu_role, scp_role in roles:
        uid = sop_class.encode()
        user_items.append(_item(ROLE_SELECTION_ITEM, _UINT16.pack(len(uid)) + uid + bytes([scu_role, scp_role])))
    parts.append(_item(USER_INFORMATION_ITEM, b"".join(user_items)))
    return wire.pdu_bytes(wire.A_ASSOCIATE_AC, b"".join(parts))


def _item(item_type: int, value: bytes) -> bytes:
    return _ITEM_HEADER.pack(item_type, len(value)) + value


def _padded_title(title: str) -> bytes:
    return title.encode("ascii").ljust(16, b" ")
