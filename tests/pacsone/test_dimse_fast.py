"""The struct-built C-STORE encodings equal pynetdicom's own."""

from io import BytesIO

import pytest
from pydicom.filewriter import write_file_meta_info
from pynetdicom import _config
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta as pynetdicom_create_file_meta
from pynetdicom.dsutils import encode
from pynetdicom.pdu_primitives import P_DATA

from pacsone.dicom import dimse_fast

CT = "1.2.840.10008.5.1.4.1.1.2"
UIDS = ["1.2.3", "1.2.826.0.1.3680043.8.498.1234567890123456789012345678901", "1.2.34"]


@pytest.mark.parametrize("instance_uid", UIDS)
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"])
def test_file_meta_is_byte_identical(instance_uid, syntax):
    expected = BytesIO()
    write_file_meta_info(expected, pynetdicom_create_file_meta(
        sop_class_uid=CT, sop_instance_uid=instance_uid, transfer_syntax=syntax))
    fast = BytesIO()
    dimse_fast.write_file_meta_info(fast, dimse_fast.create_file_meta(
        sop_class_uid=CT, sop_instance_uid=instance_uid, transfer_syntax=syntax))
    assert fast.getvalue() == expected.getvalue()


def pynetdicom_rsp_bytes(rsp: C_STORE) -> bytes:
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    return encode(message.command_set, True, True)


@pytest.mark.parametrize("instance_uid", UIDS)
@pytest.mark.parametrize("status,comment", [(0x0000, None), (0xA900, "missing SOPInstanceUID"),
                                            (0xC000, "odd"), (0xB000, None)])
def test_c_store_response_is_byte_identical(instance_uid, status, comment):
    rsp = C_STORE()
    rsp.MessageID = 7
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = instance_uid
    rsp.Status = status
    if comment:
        rsp.ErrorComment = comment
    assert dimse_fast.c_store_rsp_command(rsp) == pynetdicom_rsp_bytes(rsp)


def test_a_response_with_an_offending_element_takes_pynetdicom_s_path():
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.Status = 0xA900
    rsp.OffendingElement = [0x00100010]
    assert dimse_fast.c_store_rsp_command(rsp) is None


def received(request: C_STORE) -> DIMSEMessage:
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    command = encode(message.command_set, True, True)
    pdata = P_DATA()
    pdata.presentation_data_value_list = [[1, b"\x03" + command]]
    decoded = DIMSEMessage()
    assert not decoded.decode_msg(pdata)  # the data set is still to come
    return decoded


@pytest.mark.parametrize("move_originator", [None, "MOVER"])
@pytest.mark.parametrize("instance_uid", UIDS)
def test_c_store_request_decodes_to_the_same_primitive(instance_uid, move_originator, monkeypatch):
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)  # no file, no association
    request = C_STORE()
    request.MessageID = 65535
    request.AffectedSOPClassUID = CT
    request.AffectedSOPInstanceUID = instance_uid
    request.Priority = 2
    request.DataSet = BytesIO(b"\x08\x00\x18\x00UI\x04\x001.2\x00")
    if move_originator:
        request.MoveOriginatorApplicationEntityTitle = move_originator
        request.MoveOriginatorMessageID = 3
    message = received(request)

    fast = dimse_fast.c_store_rq_primitive(message)
    reference = message.message_to_primitive()
    names = ["MessageID", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority",
             "MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID", "DataSet", "_context_id"]
    assert {n: getattr(fast, n) for n in names} == {n: getattr(reference, n) for n in names}
