"""DIMSE command sets (group 0000, always Implicit VR Little Endian; PS3.7 section 9 and 10)
encoded and decoded with struct: a command set is a handful of small elements, and pydicom's
Dataset machinery cost more than the rest of a C-STORE or C-FIND answer."""

import struct

_TAG_LENGTH = struct.Struct("<HHL")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")

# Command Field values (PS3.7 E.1)
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_CANCEL_RQ = 0x0FFF
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
NO_DATA_SET = 0x0101
HAS_DATA_SET = 0x0000

# Element tags (group 0000) by keyword, and how each value is written.
AFFECTED_SOP_CLASS_UID = 0x0002
REQUESTED_SOP_CLASS_UID = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
COMMAND_DATA_SET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
ERROR_ID = 0x0903
AFFECTED_SOP_INSTANCE_UID = 0x1000
REQUESTED_SOP_INSTANCE_UID = 0x1001
EVENT_TYPE_ID = 0x1002
ACTION_TYPE_ID = 0x1008
REMAINING = 0x1020
COMPLETED = 0x1021
FAILED = 0x1022
WARNING = 0x1023
MOVE_ORIGINATOR_AE_TITLE = 0x1030
MOVE_ORIGINATOR_MESSAGE_ID = 0x1031

_UI = {AFFECTED_SOP_CLASS_UID, REQUESTED_SOP_CLASS_UID, AFFECTED_SOP_INSTANCE_UID, REQUESTED_SOP_INSTANCE_UID}
_US_TAGS = {COMMAND_FIELD, MESSAGE_ID, MESSAGE_ID_BEING_RESPONDED_TO, PRIORITY, COMMAND_DATA_SET_TYPE, STATUS,
            ERROR_ID, EVENT_TYPE_ID, ACTION_TYPE_ID, REMAINING, COMPLETED, FAILED, WARNING, MOVE_ORIGINATOR_MESSAGE_ID}
_TEXT = {MOVE_DESTINATION, ERROR_COMMENT, MOVE_ORIGINATOR_AE_TITLE}


class CommandError(ValueError):
    """A command set we cannot read."""


def decode(data: bytes) -> dict[int, int | str | bytes]:
    """{element number: value}: US as int, UI/AE/LO as str (padding removed), anything else as bytes."""
    values: dict[int, int | str | bytes] = {}
    position, end = 0, len(data)
    while position < end:
        if end - position < 8:
            raise CommandError("truncated command element")
        group, element, length = _TAG_LENGTH.unpack_from(data, position)
        position += 8
        if group != 0 or position + length > end:
            raise CommandError(f"bad command element ({group:04x},{element:04x})")
        raw = bytes(data[position:position + length])
        position += length
        if element in _US_TAGS and length == 2:
            values[element] = _US.unpack(raw)[0]
        elif element in _UI or element in _TEXT:
            try:
                values[element] = raw.decode("ascii").strip(" \0")
            except UnicodeDecodeError:
                raise CommandError(f"command element (0000,{element:04x}) is not ASCII") from None
        else:
            values[element] = raw
    if COMMAND_FIELD not in values:
        raise CommandError("the command set has no Command Field")
    return values


def _value_bytes(element: int, value) -> bytes:
    if isinstance(value, bytes):
        return value if len(value) % 2 == 0 else value + b"\0"
    if element in _US_TAGS:
        return _US.pack(value)
    text = str(value).encode("ascii", "replace")
    if len(text) % 2:
        text += b"\0" if element in _UI else b" "
    return text


def encode(elements: dict[int, int | str | bytes | None]) -> bytes:
    """The command set with its Command Group Length; elements whose value is None are left out."""
    parts = []
    for element in sorted(elements):
        value = elements[element]
        if value is None:
            continue
        encoded = _value_bytes(element, value)
        parts.append(_TAG_LENGTH.pack(0, element, len(encoded)) + encoded)
    body = b"".join(parts)
    return _TAG_LENGTH.pack(0, 0, 4) + _UL.pack(len(body)) + body


def response(field: int, request: dict, status: int, data_set: bool = False, **extra) -> bytes:
    """The response to `request` (a decoded command set) with `status`; extra elements by tag
    name above, e.g. error_comment=..., remaining=..."""
    elements: dict[int, int | str | bytes | None] = {
        AFFECTED_SOP_CLASS_UID: request.get(AFFECTED_SOP_CLASS_UID),
        COMMAND_FIELD: field,
        MESSAGE_ID_BEING_RESPONDED_TO: request.get(MESSAGE_ID, 0),
        COMMAND_DATA_SET_TYPE: HAS_DATA_SET if data_set else NO_DATA_SET,
        STATUS: status,
    }
    for name, value in extra.items():
        elements[_BY_NAME[name]] = value
    return encode(elements)


_BY_NAME = {
    "affected_sop_instance_uid": AFFECTED_SOP_INSTANCE_UID,
    "event_type_id": EVENT_TYPE_ID,
    "action_type_id": ACTION_TYPE_ID,
    "error_comment": ERROR_COMMENT,
    "offending_element": OFFENDING_ELEMENT,
    "remaining": REMAINING,
    "completed": COMPLETED,
    "failed": FAILED,
    "warning": WARNING,
}


def store_request(message_id: int, sop_class: str, sop_instance: str, priority: int = 0,
                  move_originator: str | None = None, move_originator_message_id: int | None = None) -> bytes:
    return encode({
        AFFECTED_SOP_CLASS_UID: sop_class,
        COMMAND_FIELD: C_STORE_RQ,
        MESSAGE_ID: message_id,
        PRIORITY: priority,
        COMMAND_DATA_SET_TYPE: HAS_DATA_SET,
        AFFECTED_SOP_INSTANCE_UID: sop_instance,
        MOVE_ORIGINATOR_AE_TITLE: move_originator,
        MOVE_ORIGINATOR_MESSAGE_ID: move_originator_message_id,
    })
