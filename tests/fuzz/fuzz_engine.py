"""Fuzz targets for what a peer's bytes reach first: the PDU reader and message assembler (the
whole association as the SCP serves it: negotiation, P-DATA, command sets, C-STORE data sets
written to a temp file with the early header parse, C-FIND identifiers decoded and turned into
a query) and the early-header parser on its own.

Run by `make fuzz` (bounded: FUZZ_EXAMPLES examples per target, a few minutes in all), not by
the default suite (the file name does not match test_*.py). Any exception other than the
parsers' own clear errors (wire.ProtocolError, ConnectionClosed, AssociationEnded, QueryError)
is a bug.
"""

import os
import struct
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID
from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPDU
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind, Verification

from pacsone.dicom import qr, query
from pacsone.dicom.net import association_request, commands, negotiation, wire
from pacsone.dicom.net.acceptor import (AcceptedAssociation, AcceptorSettings, AssociationEnded, Limits,
                                        supported_by_abstract_syntax)
from pacsone.dicom.receiving import ReceivedFile, header_from_head
from tests.helpers import pydicom_file

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
CONTEXTS = [build_context(Verification), build_context(CTImageStorage, SYNTAXES),
            build_context(StudyRootQueryRetrieveInformationModelFind, SYNTAXES)]
ALLOWED = (wire.ProtocolError, wire.ConnectionClosed, AssociationEnded)


class FakeSocket:
    """What AcceptedAssociation needs of a socket: reads come from `data`, writes are kept."""

    def __init__(self, data: bytes):
        self._input = BytesIO(data)
        self.sent = bytearray()

    def gettimeout(self):
        return None

    def settimeout(self, _seconds):
        pass

    def recv_into(self, view) -> int:
        chunk = self._input.read(min(len(view), 997))  # odd sizes: PDUs split across reads
        view[:len(chunk)] = chunk
        return len(chunk)

    def recv(self, size: int) -> bytes:
        return self._input.read(size)

    def sendall(self, data) -> None:
        self.sent += data

    def sendmsg(self, buffers) -> int:
        total = 0
        for buffer in buffers:
            self.sent += buffer
            total += len(buffer)
        return total

    def fileno(self) -> int:
        return -1

    def shutdown(self, _how) -> None:
        pass

    def close(self) -> None:
        pass


# --- Inputs ------------------------------------------------------------------------------------------


def request_bytes() -> bytes:
    primitive = negotiation.new_primitive("FUZZER", "PACSONE")
    for number, context in enumerate(CONTEXTS):
        context.context_id = 2 * number + 1
    primitive.presentation_context_definition_list = CONTEXTS
    primitive.user_information = negotiation.user_information(16384)
    return negotiation.encoded(AssociateRequestPDU, primitive)


REQUEST = request_bytes()
KEY_TAGS = [0x00080005, 0x00080020, 0x00080030, 0x00080050, 0x00080052, 0x00080061, 0x00100010, 0x00100020,
            0x00100030, 0x0020000D, 0x0020000E, 0x00201208, 0x00080018, 0x00400275, 0x00081032]
TEXTS = st.one_of(st.binary(max_size=40), st.sampled_from([b"*", b"DOE*", b"20240101-", b"-", b"STUDY", b"SERIES",
                                                           b"ISO_IR 192", b"ISO 2022 IR 87", b"\\", b"1.2.3",
                                                           b"\xff\xfe", b"PATIENT", b"IMAGE", b"?*?"]))


@st.composite
def identifiers(draw) -> bytes:
    """Implicit VR data sets of query keys with arbitrary values, sometimes with broken lengths."""
    parts = []
    for tag in sorted(draw(st.sets(st.sampled_from(KEY_TAGS), max_size=6))):
        value = draw(TEXTS)
        length = draw(st.one_of(st.just(len(value)), st.integers(0, 0xFFFFFFFF))) if draw(st.booleans()) else len(value)
        parts.append(struct.pack("<HHL", tag >> 16, tag & 0xFFFF, length) + value)
    return b"".join(parts)


@st.composite
def command_sets(draw) -> bytes:
    field = draw(st.sampled_from([commands.C_ECHO_RQ, commands.C_FIND_RQ, commands.C_STORE_RQ, commands.C_CANCEL_RQ,
                                  commands.C_MOVE_RQ, 0x8001, 0xFFFF]))
    elements = {
        commands.COMMAND_FIELD: field,
        commands.MESSAGE_ID: draw(st.integers(0, 0xFFFF)),
        commands.COMMAND_DATA_SET_TYPE: draw(st.sampled_from([commands.NO_DATA_SET, commands.HAS_DATA_SET, 0x0001])),
        commands.AFFECTED_SOP_CLASS_UID: draw(st.sampled_from([CTImageStorage, StudyRootQueryRetrieveInformationModelFind,
                                                               Verification, "", "1.2.x"])),
        commands.AFFECTED_SOP_INSTANCE_UID: draw(st.sampled_from(["1.2.3.4", "", "1" * 70, "not a uid"])),
        commands.PRIORITY: 0,
    }
    encoded = commands.encode(elements)
    if draw(st.booleans()):
        return encoded
    cut = draw(st.integers(0, len(encoded)))
    return encoded[:cut] + draw(st.binary(max_size=16))


def data_set_head() -> list[bytes]:
    """The data set bytes of a few real files (what a C-STORE sends)."""
    heads = []
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "MR_small_RLE.dcm"):
        path = pydicom_file(name)
        raw = path.read_bytes()
        start = raw.index(b"DICM") + 4
        group_length = struct.unpack_from("<L", raw, start + 8)[0]
        heads.append(raw[start + 12 + group_length:][:16384])
    return heads


HEADS = data_set_head()


@st.composite
def mutated_heads(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(HEADS)))
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


FRAGMENTS = st.one_of(command_sets(), identifiers(), mutated_heads(), st.binary(max_size=64))


@st.composite
def pdata(draw) -> bytes:
    pdvs = []
    for _ in range(draw(st.integers(1, 3))):
        data = draw(FRAGMENTS)
        context_id = draw(st.sampled_from([1, 3, 5, 7]))
        control = draw(st.integers(0, 3))
        length = len(data) + 2 if draw(st.integers(0, 9)) else draw(st.integers(0, 0xFFFFFFFF))
        pdvs.append(struct.pack(">LBB", length, context_id, control) + data)
    body = b"".join(pdvs)
    return struct.pack(">BxL", wire.P_DATA_TF, len(body)) + body


RAW_PDUS = st.builds(lambda kind, body: struct.pack(">BxL", kind, len(body)) + body,
                     st.sampled_from([0, 1, 2, 3, 5, 6, 7, 8, 0xFF]), st.binary(max_size=32))


@st.composite
def association_streams(draw) -> bytes:
    request = REQUEST
    if draw(st.integers(0, 4)) == 0:  # sometimes a damaged request
        request = bytearray(request)
        for _ in range(draw(st.integers(1, 4))):
            request[draw(st.integers(0, len(request) - 1))] = draw(st.integers(0, 255))
        request = bytes(request)
    pdus = draw(st.lists(st.one_of(pdata(), pdata(), RAW_PDUS), max_size=8))
    stream = request + b"".join(pdus)
    if draw(st.booleans()):
        stream = stream[:draw(st.integers(0, len(stream)))]
    return stream


# --- Targets -------------------------------------------------------------------------------------


@pytest.fixture
def temp_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-temp")


def acceptor_settings(folder, failures: list) -> AcceptorSettings:
    def open_store_file(context, command, calling_ae=""):
        return ReceivedFile(folder, command.get(commands.AFFECTED_SOP_CLASS_UID, ""),
                            command.get(commands.AFFECTED_SOP_INSTANCE_UID, ""), context.transfer_syntax)

    def guarded(service):
        def run(assoc, message):
            try:
                service(assoc, message)
            except ALLOWED:
                raise
            except Exception as error:  # the acceptor would answer 0xC211: for the fuzzer it is a bug
                failures.append(error)
                raise
        return run

    def echo(assoc, message):
        assoc.send_response(message, commands.C_ECHO_RSP, 0)

    def find(assoc, message):
        try:
            found = query.build_query(qr._identifier(message), query.STUDY_ROOT)
            found.describe()
        except query.QueryError:
            pass
        assoc.send_response(message, commands.C_FIND_RSP, 0)

    def store(assoc, message):
        if message.file is not None:
            header = message.file.header
            if header is not None:
                [element.value for element in header]  # what the ingest will read
            message.file.discard()
        assoc.send_response(message, commands.C_STORE_RSP, 0)

    services = {(commands.C_ECHO_RQ, str(Verification)): echo,
                (commands.C_FIND_RQ, str(StudyRootQueryRetrieveInformationModelFind)): find,
                (commands.C_STORE_RQ, str(CTImageStorage)): store}
    return AcceptorSettings(ae_title="PACSONE", contexts=CONTEXTS, services={k: guarded(v) for k, v in services.items()},
                            max_pdu=16384, limits=Limits(command_bytes=4096, identifier_bytes=8192, store_bytes=65536),
                            open_store_file=open_store_file)


@FUZZ
@given(stream=association_streams())
def test_an_association_of_any_bytes_ends_only_in_clear_errors(stream, temp_folder):
    failures: list = []
    assoc = AcceptedAssociation(FakeSocket(stream), ("127.0.0.1", 1), acceptor_settings(temp_folder, failures))
    try:
        if assoc._negotiate():
            assoc._serve_messages()
    except ALLOWED:
        pass
    finally:
        assoc._discard_partial()
    assert failures == []
    assert list(temp_folder.iterdir()) == []


@st.composite
def mutated_requests(draw) -> bytes:
    """A-ASSOCIATE-RQ bodies with bytes overwritten, cut or appended."""
    body = bytearray(REQUEST[6:])
    for _ in range(draw(st.integers(0, 4))):
        body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(body)))
    return bytes(body[:cut] if draw(st.booleans()) else body) + draw(st.binary(max_size=16))


@FUZZ
@given(body=st.one_of(mutated_requests(), st.binary(max_size=256)))
def test_an_association_request_decodes_and_is_answered_or_gives_a_protocol_error(body):
    try:
        request = association_request.decode(body)
    except wire.ProtocolError:
        return
    results, roles = association_request.negotiate(request, supported_by_abstract_syntax(CONTEXTS))
    accept = association_request.encode_accept(request, results, roles, 16384)
    assert accept[0] == wire.A_ASSOCIATE_AC and len(results) == len(request.contexts)


@FUZZ
@given(data=st.one_of(command_sets(), st.binary(max_size=128)))
def test_a_command_set_decodes_or_gives_a_command_error(data):
    try:
        commands.decode(data)
    except commands.CommandError:
        pass


@FUZZ
@given(head=st.one_of(mutated_heads(), st.binary(max_size=256)), syntax=st.sampled_from(SYNTAXES),
       complete=st.booleans())
def test_the_early_header_parser_never_raises(head, syntax, complete):
    header = header_from_head(head, UID(syntax), complete)
    if header is not None:
        [element.value for element in header]


@FUZZ
@given(data=identifiers(), syntax=st.sampled_from(SYNTAXES))
def test_a_c_find_identifier_decodes_or_gives_a_query_error(data, syntax):
    from pacsone.dicom.net.acceptor import AcceptedContext, Message

    context = AcceptedContext(1, StudyRootQueryRetrieveInformationModelFind, UID(syntax), False, True)
    message = Message(context, {commands.COMMAND_FIELD: commands.C_FIND_RQ}, data=data)
    try:
        found = query.build_query(qr._identifier(message), query.STUDY_ROOT)
        found.describe()
    except query.QueryError:
        pass


def test_the_sample_files_parse(tmp_path):
    """The seeds the mutations start from are real data sets."""
    assert sum(header_from_head(head, UID(ExplicitVRLittleEndian), True) is not None for head in HEADS) >= 2
    assert dcmread(pydicom_file("CT_small.dcm"), stop_before_pixels=True)
