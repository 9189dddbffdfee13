"""The three small DIMSE encodings of every C-STORE, done with struct (pynetdicom 3.0.4, pinned).

For each received instance pynetdicom builds pydicom Datasets three times, with a value check
on every attribute: the File Meta Information it writes in front of the received data set
(STORE_RECV_CHUNKED_DATASET), the C-STORE-RQ primitive decoded from the command set, and the
C-STORE-RSP command set, which it encodes twice (once to measure its group length). Together
that cost more CPU than receiving the image. Here the same bytes and the same primitive come
from a few struct calls:

- `install_file_meta_writer()` swaps dimse_messages' `create_file_meta`/`write_file_meta_info`
  for byte-identical ones;
- `FastDIMSEProvider` (installed per association by transport.py) decodes C-STORE-RQ
  command sets and encodes C-STORE-RSP command sets directly.

Anything outside the plain case (other messages, extra or unusual elements, non-ASCII text,
handlers bound to EVT_DIMSE_SENT, a peer PDU too small for one fragment) takes pynetdicom's own
path. tests/pacsone/test_dimse_fast.py checks both give the same bytes and primitives.
"""

import struct
from types import MethodType
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.filewriter import write_file_meta_info as pydicom_write_file_meta_info
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, dimse_messages, evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta as pynetdicom_create_file_meta
from pynetdicom.pdu_primitives import P_DATA

from ..storage import IncomingFile

_US = struct.Struct("<H")
_UL = struct.Struct("<L")

# --- File Meta Information (Explicit VR Little Endian) -------------------------------------------


class FileMetaBytes(bytes):
    """An encoded File Meta Information group, as returned by `create_file_meta` below."""


def _explicit(group_element: int, vr: bytes, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("value too long for a short explicit VR element")
    return _UL.pack(((group_element & 0xFFFF) << 16) | (group_element >> 16)) + vr + _US.pack(len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    value = text.encode("ascii")
    return value + pad if len(value) % 2 else value


def file_meta_bytes(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                    implementation_uid: str, implementation_version: str) -> bytes:
    """Group 0002 as pydicom's write_file_meta_info(create_file_meta(...)) writes it."""
    body = (
        b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"  # (0002,0001) version 00 01
        + _explicit(0x00020002, b"UI", _padded(sop_class_uid, b"\0"))
        + _explicit(0x00020003, b"UI", _padded(sop_instance_uid, b"\0"))
        + _explicit(0x00020010, b"UI", _padded(transfer_syntax, b"\0"))
        + _explicit(0x00020012, b"UI", _padded(implementation_uid, b"\0"))
    )
    if implementation_version:
        body += _explicit(0x00020013, b"SH", _padded(implementation_version, b" "))
    return b"\x02\x00\x00\x00UL\x04\x00" + _UL.pack(len(body)) + body


def create_file_meta(
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str = ImplicitVRLittleEndian,
    implementation_uid: str = PYNETDICOM_IMPLEMENTATION_UID,
    implementation_version: str = PYNETDICOM_IMPLEMENTATION_VERSION,
) -> Any:
    try:
        return FileMetaBytes(file_meta_bytes(sop_class_uid, sop_instance_uid, transfer_syntax,
                                             implementation_uid, implementation_version))
    except (ValueError, UnicodeEncodeError, AttributeError):  # odd UIDs: pydicom's way
        return pynetdicom_create_file_meta(
            sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid, transfer_syntax=transfer_syntax,
            implementation_uid=implementation_uid, implementation_version=implementation_version,
        )


def write_file_meta_info(fp, file_meta, enforce_standard: bool = True) -> None:
    if isinstance(file_meta, FileMetaBytes):
        fp.write(file_meta)
    else:
        pydicom_write_file_meta_info(fp, file_meta, enforce_standard)


def install_file_meta_writer() -> None:
    """Make pynetdicom's chunked C-STORE receive write the File Meta Information with struct."""
    dimse_messages.create_file_meta = create_file_meta
    dimse_messages.write_file_meta_info = write_file_meta_info


# --- Command sets (Implicit VR Little Endian) ----------------------------------------------------


def _implicit(tag: int, value: bytes) -> bytes:
    return _UL.pack(((tag & 0xFFFF) << 16) | (tag >> 16)) + _UL.pack(len(value)) + value


def c_store_rsp_command(rsp: C_STORE) -> bytes | None:
    """The encoded C-STORE-RSP command set, or None when it is not the plain case."""
    if rsp.OffendingElement is not None or rsp.Status is None or rsp.MessageIDBeingRespondedTo is None:
        return None
    try:
        elements = []
        if rsp.AffectedSOPClassUID is not None:
            elements.append(_implicit(0x00000002, _padded(rsp.AffectedSOPClassUID, b"\0")))
        elements.append(_implicit(0x00000100, _US.pack(0x8001)))  # CommandField: C-STORE-RSP
        elements.append(_implicit(0x00000120, _US.pack(rsp.MessageIDBeingRespondedTo)))
        elements.append(_implicit(0x00000800, _US.pack(0x0101)))  # no data set
        elements.append(_implicit(0x00000900, _US.pack(rsp.Status)))
        if rsp.ErrorComment is not None:
            elements.append(_implicit(0x00000902, _padded(rsp.ErrorComment, b" ")))
        if rsp.AffectedSOPInstanceUID is not None:
            elements.append(_implicit(0x00001000, _padded(rsp.AffectedSOPInstanceUID, b"\0")))
    except (struct.error, UnicodeEncodeError, TypeError):
        return None
    body = b"".join(elements)
    return _implicit(0x00000000, _UL.pack(len(body))) + body


# C-STORE-RQ command elements: tag -> (primitive attribute, kind). CommandGroupLength, CommandField
# and CommandDataSetType have no primitive attribute.
_C_STORE_RQ_FIELDS = {
    0x00000002: ("AffectedSOPClassUID", "UI"),
    0x00000110: ("MessageID", "US"),
    0x00000700: ("Priority", "US"),
    0x00001000: ("AffectedSOPInstanceUID", "UI"),
    0x00001030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x00001031: ("MoveOriginatorMessageID", "US"),
}
_C_STORE_RQ_OTHERS = {0x00000000, 0x00000100, 0x00000800}


def c_store_rq_primitive(message: C_STORE_RQ) -> C_STORE | None:
    """The C-STORE primitive of a received C-STORE-RQ, or None when it is not the plain case."""
    elements = message.command_set._dict
    values = {}
    for tag, element in elements.items():
        if tag in _C_STORE_RQ_OTHERS:
            continue
        field = _C_STORE_RQ_FIELDS.get(tag)
        if field is None:
            return None
        name, kind = field
        if not isinstance(element, RawDataElement):  # decode_msg() already read it
            value = element.value
            if not isinstance(value, int if kind == "US" else str):
                return None
            values[name] = value
            continue
        raw = element.value or b""
        if kind == "US":
            if len(raw) != 2:
                return None
            values[name] = _US.unpack(raw)[0]
        else:
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                return None
            if "\\" in text:
                return None
            values[name] = text.strip(" \0") if kind == "AE" else text.rstrip("\0 ")
    primitive = C_STORE()
    for name, value in values.items():
        if value == "":
            return None
        setattr(primitive, name, value)
    primitive.DataSet = message.data_set
    primitive._context_id = message.context_id
    primitive._dataset_path = message._data_set_path
    primitive._dataset_file = message._data_set_file
    return primitive


class FastDIMSEProvider(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider with the C-STORE request/response encodings above."""

    def send_msg(self, primitive, context_id: int) -> None:
        if type(primitive) is C_STORE and not self.assoc.get_handlers(evt.EVT_DIMSE_SENT):
            encoded = c_store_rsp_command(primitive)
            max_pdu = self.maximum_pdu_size
            if encoded is not None and (not max_pdu or len(encoded) <= max_pdu - 6):
                pdata = P_DATA()
                pdata.presentation_data_value_list.append((context_id, b"\x03" + encoded))
                self.dul.send_pdu(pdata)
                return
        super().send_msg(primitive, context_id)

    def receive_primitive(self, primitive: P_DATA) -> None:
        if self.message is None:
            # decode_msg() turns the message into a C_STORE_RQ (by __class__) once its command
            # set is complete; an instance attribute survives that and takes the plain case.
            message = self.message = DIMSEMessage()
            message.message_to_primitive = MethodType(_message_to_primitive, message)
        receiving = self.message._data_set_file
        super().receive_primitive(primitive)
        if self.message is None and isinstance(receiving, IncomingFile):
            # The data set is complete and queued for the handler: sync it now, while the
            # association thread reads its header (the ingest waits for this sync).
            try:
                receiving.sync()
            except OSError:
                pass  # the ingest's own sync() raises it again and fails the C-STORE


def _message_to_primitive(message: DIMSEMessage):
    if type(message) is C_STORE_RQ:
        primitive = c_store_rq_primitive(message)
        if primitive is not None:
            return primitive
    return type(message).message_to_primitive(message)
