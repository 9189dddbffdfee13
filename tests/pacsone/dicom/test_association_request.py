"""The acceptor's own A-ASSOCIATE-RQ decoding, negotiation and A-ASSOCIATE-AC encoding
(association_request.py) held to pynetdicom's, which the acceptor used before: the same request
read, the same contexts and roles accepted, the same accept bytes. On requests that dcmtk's tools
send and on requests pynetdicom encodes from generated proposals, against our real contexts."""

import socket
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import A_ASSOCIATE_AC as AssociateAcceptPDU
from pynetdicom.pdu import A_ASSOCIATE_RQ as AssociateRequestPDU
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor

from pacsone.dicom.net import association_request, negotiation, wire
from pacsone.dicom.net.acceptor import supported_by_abstract_syntax
from pacsone.dicom.scp import supported_contexts
from tests.helpers import dcmtk_program, pydicom_file

MAX_PDU = 4 * 1024 * 1024
OURS = supported_contexts()
SUPPORTED = supported_by_abstract_syntax(OURS)
SOP_CLASSES = sorted({str(c.abstract_syntax) for c in OURS})[:40] + [
    "1.2.840.113619.4.27",  # a GE private storage class: not in our list
    "1.2.840.10008.5.1.4.1.1.9999",
]
TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50",
                     "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.3.4.5.6"]


def pynetdicom_answer(body: bytes, contexts: list[PresentationContext]):
    """What the acceptor answered through pynetdicom: (request primitive, results, AC bytes)."""
    rq = negotiation.decoded(AssociateRequestPDU, wire.A_ASSOCIATE_RQ, memoryview(body))
    roles = {item.sop_class_uid: (item.scu_role, item.scp_role) for item in rq.user_information
             if isinstance(item, SCP_SCU_RoleSelectionNegotiation)}
    results, ac_roles = negotiate_as_acceptor(rq.presentation_context_definition_list, contexts, roles)
    primitive = negotiation.new_primitive(rq.calling_ae_title, rq.called_ae_title)
    primitive.result = 0x00
    primitive.result_source = 0x01
    primitive.presentation_context_definition_results_list = results
    primitive.user_information = [*negotiation.user_information(MAX_PDU), *ac_roles]
    return rq, results, negotiation.encoded(AssociateAcceptPDU, primitive)


def assert_same_as_pynetdicom(body: bytes, contexts=OURS, supported=SUPPORTED):
    rq, expected_results, expected_accept = pynetdicom_answer(body, contexts)
    request = association_request.decode(body)
    assert (request.calling_ae_title, request.called_ae_title) == (rq.calling_ae_title, rq.called_ae_title)
    assert request.max_pdu == negotiation.peer_max_pdu(rq)
    assert [(c.context_id, c.abstract_syntax, list(c.transfer_syntaxes)) for c in request.contexts] == [
        (c.context_id, str(c.abstract_syntax), [str(s) for s in c.transfer_syntax])
        for c in rq.presentation_context_definition_list]
    results, roles = association_request.negotiate(request, supported)
    assert [(r.context_id, r.result, r.transfer_syntax) for r in results] == [
        (c.context_id, c.result, str(c.transfer_syntax[0])) for c in expected_results]
    assert [(r.as_scu, r.as_scp) for r in results if r.result == 0] == [
        (bool(c.as_scu), bool(c.as_scp)) for c in expected_results if c.result == 0]
    assert association_request.encode_accept(request, results, roles, MAX_PDU) == expected_accept
    return request, results


def request_bytes(calling: str, called: str, proposals: list[tuple[str, list[str]]],
                  roles: dict[str, tuple[bool, bool]] = (), max_pdu: int = 16384) -> bytes:
    """The body of an A-ASSOCIATE-RQ as pynetdicom encodes it."""
    primitive = negotiation.new_primitive(calling, called)
    for index, (abstract_syntax, syntaxes) in enumerate(proposals):
        context = PresentationContext()
        context.context_id = 2 * index + 1
        context.abstract_syntax = abstract_syntax
        context.transfer_syntax = syntaxes
        primitive.presentation_context_definition_list.append(context)
    role_items = []
    for sop_class, (scu, scp) in dict(roles).items():
        item = SCP_SCU_RoleSelectionNegotiation()
        item.sop_class_uid, item.scu_role, item.scp_role = sop_class, scu, scp
        role_items.append(item)
    primitive.user_information = [*negotiation.user_information(max_pdu), *role_items]
    return negotiation.encoded(AssociateRequestPDU, primitive)[6:]


# --- Requests of real peers ----------------------------------------------------------------------


def captured_request(program: str, options: list[str], files: list[str]) -> bytes:
    """The A-ASSOCIATE-RQ body that a dcmtk tool sends to a listener that never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    port = listener.getsockname()[1]
    process = subprocess.Popen([program, "-to", "5", *options, "127.0.0.1", str(port), *files],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        peer, _ = listener.accept()
        with peer:
            header = peer.recv(6, socket.MSG_WAITALL)
            return peer.recv(int.from_bytes(header[2:6], "big"), socket.MSG_WAITALL)
    finally:
        process.kill()
        process.wait()
        listener.close()


@pytest.mark.parametrize("tool,arguments", [
    ("storescu", ["-aet", "MODALITY", "-aec", "PACSONE"]),  # every storage class: 128 contexts
    ("findscu", ["-S", "-aec", "PACSONE"]),
    ("movescu", ["-S", "-aec", "PACSONE"]),
    ("getscu", ["-aec", "PACSONE"]),  # proposes the Storage SCP role on its storage contexts
    ("echoscu", ["-aec", "PACSONE", "-ppc", "128", "-pts", "38"]),  # 4,864 transfer syntaxes
])
def test_requests_of_dcmtk_tools_are_answered_as_pynetdicom_answered_them(tool, arguments):
    program = dcmtk_program(tool)
    files = [str(pydicom_file("CT_small.dcm"))] if tool == "storescu" else []
    if tool in ("findscu", "movescu", "getscu"):
        arguments = [*arguments, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3"]
    body = captured_request(program, arguments, files)
    request, results = assert_same_as_pynetdicom(body)
    assert request.calling_ae_title and request.called_ae_title == "PACSONE"
    assert any(result.result == 0 for result in results)
    if tool == "getscu":
        assert request.roles and any(result.as_scp for result in results)


# --- Generated requests --------------------------------------------------------------------------

proposal = st.tuples(st.sampled_from(SOP_CLASSES), st.lists(st.sampled_from(TRANSFER_SYNTAXES), min_size=1,
                                                              max_size=4, unique=True))
role = st.sampled_from([(True, True), (True, False), (False, True)])  # pynetdicom sends no (0, 0)
title = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="\\"), min_size=1,
                max_size=16)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(calling=title, called=title, proposals=st.lists(proposal, min_size=1, max_size=12),
       roles=st.dictionaries(st.sampled_from(SOP_CLASSES), role, max_size=4),
       max_pdu=st.sampled_from([0, 16384, 1 << 20]))
def test_generated_requests_are_answered_as_pynetdicom_answers_them(calling, called, proposals, roles, max_pdu):
    assert_same_as_pynetdicom(request_bytes(calling, called, proposals, roles, max_pdu))


def test_our_preference_of_transfer_syntax_decides_and_refusals_say_why():
    body = request_bytes("MODALITY", "PACSONE", [
        ("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]),  # CT, both
        ("1.2.840.10008.5.1.4.1.1.2", ["1.2.3.4.5.6"]),  # CT, a syntax nobody knows
        ("1.2.3.4.5.6.7", ["1.2.840.10008.1.2"]),  # not a SOP class we know
    ])
    request, results = assert_same_as_pynetdicom(body)
    assert [(r.context_id, r.result) for r in results] == [(1, 0x00), (3, 0x04), (5, 0x03)]
    preferred = SUPPORTED["1.2.840.10008.5.1.4.1.1.2"].transfer_syntaxes
    assert results[0].transfer_syntax == next(s for s in preferred if s in request.contexts[0].transfer_syntaxes)


def test_role_selection_is_answered_as_ps3_7_says():
    """A C-GET requestor that proposes the SCP role on a storage context gets it; a role proposed
    as 0 is not answered as 1; a context where neither side could act is refused by the user."""
    ct, mr = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
    body = request_bytes("GETSCU", "PACSONE", [(ct, ["1.2.840.10008.1.2"]), (mr, ["1.2.840.10008.1.2"])],
                         {ct: (False, True), mr: (True, False)})
    request, results = assert_same_as_pynetdicom(body)
    # The requestor as Storage SCP makes us the SCU of its C-GET's C-STOREs; as SCU only, we answer.
    assert [(r.as_scu, r.as_scp) for r in results] == [(True, False), (False, True)]
    only_scu = {ct: association_request.Supported(("1.2.840.10008.1.2",), True, False)}
    contexts = [_context(ct, scu_role=True, scp_role=False)]
    _request, refused = assert_same_as_pynetdicom(request_bytes("GETSCU", "PACSONE", [(ct, ["1.2.840.10008.1.2"])],
                                                                {ct: (False, True)}), contexts, only_scu)
    assert refused[0].result == association_request.USER_REJECTION


def _context(abstract_syntax, scu_role=None, scp_role=None) -> PresentationContext:
    context = PresentationContext()
    context.abstract_syntax = abstract_syntax
    context.transfer_syntax = ["1.2.840.10008.1.2"]
    context.scu_role, context.scp_role = scu_role, scp_role
    return context


# --- What is not an A-ASSOCIATE-RQ ---------------------------------------------------------------

GOOD = request_bytes("MODALITY", "PACSONE", [("1.2.840.10008.1.1", ["1.2.840.10008.1.2"])])


@pytest.mark.parametrize("body,complaint", [
    (GOOD[:60], "fewer than 68"),
    (GOOD[:-3], "runs past its end"),
    (GOOD + b"\x99\x00", "stray bytes"),
    (GOOD[:4] + "MÜLLER".encode("latin-1").ljust(16) + GOOD[20:], "called AE title is not ASCII"),
    (GOOD[:20] + b"BAD\\TITLE".ljust(16) + GOOD[36:], "control character or a backslash"),
    (GOOD[:20] + b"BAD\x07".ljust(16) + GOOD[36:], "control character or a backslash"),
    (GOOD.replace(b"\x01\x00\x00\x00\x30", b"\x02\x00\x00\x00\x30"), "is even"),
])
def test_what_is_not_a_request_is_a_protocol_error_with_its_reason(body, complaint):
    with pytest.raises(wire.ProtocolError, match=complaint):
        association_request.decode(body)


def test_a_context_without_a_transfer_syntax_or_proposed_twice_is_a_protocol_error():
    context = association_request._item(association_request.CONTEXT_RQ_ITEM, bytes([1, 0, 0, 0]) + (
        association_request._item(association_request.ABSTRACT_SYNTAX_ITEM, b"1.2.840.10008.1.1")))
    with pytest.raises(wire.ProtocolError, match="needs an abstract syntax and a transfer syntax"):
        association_request.decode(GOOD[:68] + context)
    twice = request_bytes("MODALITY", "PACSONE", [("1.2.840.10008.1.1", ["1.2.840.10008.1.2"])] * 2)
    twice = twice.replace(b"\x03\x00\x00\x00\x30", b"\x01\x00\x00\x00\x30")
    with pytest.raises(wire.ProtocolError, match="proposed twice"):
        association_request.decode(twice)


def test_titles_padded_with_nuls_and_unknown_items_are_read():
    body = GOOD[:4] + b"PACSONE".ljust(16, b"\0") + GOOD[20:] + association_request._item(0x77, b"future")
    request = association_request.decode(body)
    assert request.called_ae_title == "PACSONE" and request.calling_ae_title == "MODALITY"
    assert [c.abstract_syntax for c in request.contexts] == ["1.2.840.10008.1.1"]
