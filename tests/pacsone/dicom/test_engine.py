"""The SCP's own engine (pacsone/dicom/net/: acceptor.py, wire.py, commands.py; pacsone/dicom/receiving.py): its
encodings equal pydicom's and pynetdicom's, and a peer that breaks the protocol gets an abort
while the server goes on serving and keeps nothing half-received."""

import socket
import struct
import time
from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings
from pydicom import dcmread
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, PYDICOM_ROOT_UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import CTImageStorage, Verification

from pacsone.dicom.net import commands, wire
from pacsone.dicom.net.file_meta import PREAMBLE, file_meta, file_meta_bytes
from pacsone.dicom.net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsone.dicom import receiving
from pacsone.dataset_structure import Truncated, check_head
from pacsone.dicom.receiving import header_from_head
from pacsone.header_json import instance_header_json
from pacsone.dicom.net.requestor import StoreAssociation
from pacsone.models import Instance
from tests.helpers import echo_status, make_dataset, pydicom_file

CT = "1.2.840.10008.5.1.4.1.1.2"
UIDS = ["1.2.3", "1.2.826.0.1.3680043.8.498.1234567890123456789012345678901", "1.2.34"]


# --- Encodings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_uid", UIDS)
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"])
@pytest.mark.parametrize("source_ae", ["", "MODALITY", "CT1"])
def test_file_meta_is_byte_identical_to_pydicom(instance_uid, syntax, source_ae):
    meta = file_meta(CT, instance_uid, syntax, source_ae)  # a pydicom FileMetaDataset, written by pydicom
    expected = BytesIO()
    write_file_meta_info(expected, meta)
    assert file_meta_bytes(CT, instance_uid, syntax, source_ae) == expected.getvalue()


def test_file_meta_names_us_and_the_sender_not_pynetdicom():
    meta = dcmread(BytesIO(PREAMBLE + file_meta_bytes(CT, "1.2.3", "1.2.840.10008.1.2.1", "MODALITY")))
    assert meta.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert not IMPLEMENTATION_CLASS_UID.startswith(PYDICOM_ROOT_UID)
    assert IMPLEMENTATION_CLASS_UID not in (PYNETDICOM_IMPLEMENTATION_UID, PYDICOM_IMPLEMENTATION_UID)
    assert meta.file_meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert len(IMPLEMENTATION_VERSION_NAME) <= 16 and len(IMPLEMENTATION_CLASS_UID) <= 64
    assert meta.file_meta.SourceApplicationEntityTitle == "MODALITY"


def pynetdicom_store_rsp(instance_uid: str, status: int, comment: str | None) -> bytes:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = instance_uid
    rsp.Status = status
    if comment:
        rsp.ErrorComment = comment
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    return encode(message.command_set, True, True)


@pytest.mark.parametrize("instance_uid", UIDS)
@pytest.mark.parametrize("status,comment", [(0x0000, None), (0xA900, "missing SOPInstanceUID"), (0xC000, "odd")])
def test_store_response_is_byte_identical_to_pynetdicom(instance_uid, status, comment):
    request = {commands.AFFECTED_SOP_CLASS_UID: CT, commands.MESSAGE_ID: 7, commands.COMMAND_FIELD: commands.C_STORE_RQ}
    ours = commands.response(commands.C_STORE_RSP, request, status, affected_sop_instance_uid=instance_uid,
                             error_comment=comment)
    assert ours == pynetdicom_store_rsp(instance_uid, status, comment)


def test_command_sets_round_trip():
    encoded = commands.store_request(9, CT, UIDS[1], move_originator="MOVESCU", move_originator_message_id=3)
    decoded = commands.decode(encoded)
    assert decoded[commands.COMMAND_FIELD] == commands.C_STORE_RQ and decoded[commands.MESSAGE_ID] == 9
    assert decoded[commands.AFFECTED_SOP_INSTANCE_UID] == UIDS[1]
    assert decoded[commands.MOVE_ORIGINATOR_AE_TITLE] == "MOVESCU"
    assert decoded[commands.MOVE_ORIGINATOR_MESSAGE_ID] == 3
    group_length = struct.unpack_from("<L", encoded, 8)[0]
    assert group_length == len(encoded) - 12


@pytest.mark.parametrize("data", [b"\x00\x00\x00\x01", b"\x08\x00\x10\x00\x02\x00\x00\x00ab",
                                  b"\x00\x00\x00\x01\xff\xff\x00\x00"])
def test_a_broken_command_set_is_refused(data):
    with pytest.raises(commands.CommandError):
        commands.decode(data)


def test_truncated_presentation_data_values_are_refused():
    with pytest.raises(wire.ProtocolError):
        list(wire.iter_pdvs(memoryview(b"\x00\x00\x00\x10\x01\x03abc")))


# --- The header read from the first bytes ---------------------------------------------------------------


def data_set_bytes(path) -> tuple[bytes, UID]:
    """The data set part of a Part-10 file, and its transfer syntax."""
    ds = dcmread(path)
    raw = path.read_bytes()
    meta = BytesIO()
    write_file_meta_info(meta, ds.file_meta, enforce_standard=False)
    start = raw.index(b"DICM") + 4
    group_length = struct.unpack_from("<L", raw, start + 8)[0]
    return raw[start + 12 + group_length:], UID(ds.file_meta.TransferSyntaxUID)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
                                  "rtplan.dcm", "JPEG-lossy.dcm"])
def test_the_early_header_is_the_header_pydicom_reads(name):
    path = pydicom_file(name)
    data, syntax = data_set_bytes(path)
    expected = dcmread(path, stop_before_pixels=True)
    header = header_from_head(data[:65536], syntax, complete=len(data) <= 65536)
    assert header is not None
    assert [(e.tag, e.value) for e in header] == [(e.tag, e.value) for e in expected]


def pydicom_test_files_to_walk() -> list:
    """pydicom's own files whose data sets the early header reads (little endian, not deflated)."""
    from pydicom.data import get_testdata_files

    found = []
    for name in sorted(get_testdata_files("*.dcm")):
        try:
            syntax = UID(dcmread(name, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        except Exception:
            continue
        if syntax.is_transfer_syntax and syntax.is_little_endian and not syntax.is_deflated:
            found.append(Path(name))
    return found


def test_the_plain_walk_reads_what_pydicoms_reader_reads_on_all_of_pydicoms_files():
    """receiving._raw_elements (struct over the bytes in memory) gives the same data set and DICOM
    JSON as read_dataset whenever it does not hand over to it, whole or cut at 64 kB."""
    walked = 0
    for path in pydicom_test_files_to_walk():
        data, syntax = data_set_bytes(path)
        for head, complete in ((data, True), (data[:65536], len(data) <= 65536), (data[:1000], False)):
            walk = receiving._raw_elements(head, syntax.is_implicit_VR, complete)
            if walk is None:
                continue
            walked += 1
            elements, stopped_at = walk
            assert stopped_at == len(head) or struct.unpack_from("<L", head, stopped_at)[0] in (0x00107FE0, 0x00097FE0,
                                                                                                0x00087FE0), path.name
            ours = receiving._dataset(elements, syntax.is_implicit_VR)
            theirs = read_dataset(receiving._Head(head), syntax.is_implicit_VR, True, stop_when=receiving._at_pixel_data)
            assert list(ours.keys()) == list(theirs.keys()), path.name
            assert ours._character_set == theirs._character_set, path.name
            try:
                expected = instance_header_json(theirs, strict=True)
            except Exception as exc:
                with pytest.raises(type(exc)):
                    instance_header_json(ours, strict=True)
                continue
            assert instance_header_json(ours, strict=True) == expected, path.name
    assert walked > 50  # the walk, not the hand-over, reads most of them


def structure_verdict(head, length, syntax, start=0):
    try:
        return check_head(head, length, syntax.is_implicit_VR, True, start=start)
    except Truncated as truncated:
        return str(truncated)


def test_the_truncation_check_from_where_the_walk_stopped_judges_as_the_whole_walk():
    """ReceivedFile checks a data set from the pixel data on when the header walk got there: the
    same verdict as a walk from its first byte, for every pydicom file whole and cut anywhere."""
    compared = 0
    for path in pydicom_test_files_to_walk():
        data, syntax = data_set_bytes(path)
        for cut in sorted({len(data), len(data) - 1, len(data) - 7, len(data) // 2, 70_000, 65_536, 4_000}):
            if not 0 < cut <= len(data):
                continue
            dataset = data[:cut]  # as received: the data set ends at the cut
            for head_bytes in (len(dataset), 65_536):
                head = dataset[:head_bytes]
                walk = receiving._raw_elements(head, syntax.is_implicit_VR, complete=len(head) == len(dataset))
                if walk is None or walk[1] == 0:
                    continue
                compared += 1
                assert (structure_verdict(head, len(dataset), syntax, start=walk[1])
                        == structure_verdict(head, len(dataset), syntax)), (path.name, cut, head_bytes)
    assert compared > 100


def test_the_plain_walk_hands_over_what_it_does_not_read():
    data, syntax = data_set_bytes(pydicom_file("CT_small.dcm"))
    assert receiving._raw_elements(data, syntax.is_implicit_VR, complete=True) is not None
    assert receiving._raw_elements(data[:300], syntax.is_implicit_VR, complete=False) is None  # cut short
    undefined_length_sequence = struct.pack("<HH2sHL", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF) + b"\0" * 16
    assert receiving._raw_elements(undefined_length_sequence, False, complete=True) is None
    unknown_vr = struct.pack("<HH2sH", 0x0008, 0x0016, b"ZZ", 4) + b"1.2\0"
    assert receiving._raw_elements(unknown_vr, False, complete=True) is None
    # each of them is still read, by pydicom's reader
    data, syntax = data_set_bytes(pydicom_file("rtplan.dcm"))
    assert header_from_head(data, syntax, complete=True) is not None


def test_an_early_header_cut_short_is_not_trusted():
    data, syntax = data_set_bytes(pydicom_file("CT_small.dcm"))
    assert header_from_head(data[:300], syntax, complete=False) is None
    assert header_from_head(b"\x01\x02" * 200, syntax, complete=False) is None


# --- A peer that breaks the protocol ------------------------------------------------------------------


def temp_files() -> list:
    folder = settings.STORAGE_DIR / "tmp"
    return [p for p in folder.iterdir()] if folder.exists() else []


def open_association(port: int) -> StoreAssociation:
    association = StoreAssociation("127.0.0.1", port, "BREAKER", "PACSONE",
                                   [build_context(CTImageStorage, [ExplicitVRLittleEndian]),
                                    build_context(Verification, [ImplicitVRLittleEndian])], 16384, timeout=5)
    association.open()
    return association


def answer_to(connection: wire.Connection) -> int | None:
    """The type of the PDU the SCP answers with, or None when it just closed the connection."""
    try:
        pdu_type, _ = connection.read_pdu()
        return pdu_type
    except (wire.ConnectionClosed, OSError):
        return None


def assert_aborted_and_the_scp_goes_on(association: StoreAssociation, port: int) -> None:
    assert answer_to(association.connection) == wire.A_ABORT
    association.connection.close()
    assert echo_status(port) == 0x0000


def test_garbage_instead_of_an_association_request(scp):
    _ae, port = scp
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
        assert answer_to(wire.Connection(sock, 0)) in (wire.A_ABORT, None)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # connects and leaves without a word
    assert echo_status(port) == 0x0000


def test_data_on_a_context_that_was_not_accepted_aborts(scp):
    _ae, port = scp
    association = open_association(port)
    association.connection.send_message(99, commands.encode({commands.COMMAND_FIELD: commands.C_ECHO_RQ,
                                                             commands.MESSAGE_ID: 1,
                                                             commands.COMMAND_DATA_SET_TYPE: commands.NO_DATA_SET}))
    assert_aborted_and_the_scp_goes_on(association, port)


def test_an_oversized_pdu_aborts(scp):
    _ae, port = scp
    association = open_association(port)
    association.connection.sock.sendall(struct.pack(">BxL", wire.P_DATA_TF, settings.PACS_MAX_PDU + 1000))
    assert_aborted_and_the_scp_goes_on(association, port)


def test_a_c_store_cut_off_midway_leaves_nothing_behind(scp):
    _ae, port = scp
    association = open_association(port)
    context = association.context_for(CTImageStorage, [ExplicitVRLittleEndian])
    ds = make_dataset(sop_uid="1.2.826.0.1.3680043.77.1")
    data = encode(ds, False, True)
    command = commands.store_request(1, CTImageStorage, ds.SOPInstanceUID)
    association.connection.send_message(context.context_id, command)
    association.connection._send_parts(association.connection._fragments(context.context_id, 0, data)[:1]
                                       + [data[:len(data) // 2]])  # not the last fragment: half of it
    association.connection.close()
    assert echo_status(port) == 0x0000  # by then the cut-off association has been cleaned up
    assert temp_files() == [] and not Instance.objects.exists()


def temp_files_soon() -> list:
    """The temp folder's files once the association that just ended has cleaned up (it does so
    after its A-RELEASE-RP or A-ABORT went out)."""
    deadline = time.monotonic() + 5
    while temp_files() and time.monotonic() < deadline:
        time.sleep(0.02)
    return temp_files()


@pytest.mark.parametrize("ending", ["release", "abort"])
def test_the_file_opened_ahead_for_the_next_c_store_goes_when_the_association_ends(scp, ending):
    _ae, port = scp
    association = open_association(port)
    context = association.context_for(CTImageStorage, [ExplicitVRLittleEndian])
    for number in (1, 2):
        ds = make_dataset(sop_uid=f"1.2.826.0.1.3680043.77.3.{number}")
        association.connection.send_message(context.context_id, commands.store_request(number, CTImageStorage,
                                                                                       ds.SOPInstanceUID),
                                            encode(ds, False, True))
        assert association.await_response(number).command[commands.STATUS] == 0x0000
    assert len(temp_files()) <= 1  # at most the one opened ahead
    if ending == "release":
        association.release()
        assert temp_files() == []  # before the A-RELEASE-RP
    else:
        association.abort()
        assert temp_files_soon() == []
    assert Instance.objects.count() == 2


def test_a_release_in_the_middle_of_a_c_store_aborts(scp):
    _ae, port = scp
    association = open_association(port)
    context = association.context_for(CTImageStorage, [ExplicitVRLittleEndian])
    command = commands.store_request(1, CTImageStorage, "1.2.826.0.1.3680043.77.2")
    association.connection.send_message(context.context_id, command)
    association.connection.send_pdu(wire.A_RELEASE_RQ, bytes(4))
    assert_aborted_and_the_scp_goes_on(association, port)
    assert temp_files() == []
