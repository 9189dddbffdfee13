"""Conformance of the SCP over real localhost associations: the called AE title, storage SOP
classes we do not know (private, newer), services keyed by command and SOP class, our own
implementation identity, and bad data sets refused while the association goes on."""

import socket
import threading
import time

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config, evt
from pynetdicom.dsutils import encode
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    CTImageStorage,
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from pacsone import storage
from pacsone.dicom import scu
from pacsone.dicom.net import commands, status
from pacsone.dicom.net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsone.dicom.net.requestor import AssociationRefused, AssociationRejected, StoreAssociation
from pacsone.dicom.scp import is_storage_sop_class, start_server, stop_server
from pacsone.models import Instance, RemoteAE
from tests.helpers import dataset_bytes, echo_status, free_port, make_dataset, stored_files, temp_leftovers, write_dataset

GE_PRIVATE_3D_MODEL = "1.2.840.113619.4.26"  # GE Private 3D Model Storage
SIEMENS_CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"  # Siemens CSA Non-Image Storage


def raw_association(port: int, *sop_classes: str, called_ae: str = "PACSONE") -> StoreAssociation:
    """Our own requestor, so that requests pynetdicom would refuse to send can be sent."""
    contexts = [build_context(uid, [ExplicitVRLittleEndian]) for uid in sop_classes]
    association = StoreAssociation("127.0.0.1", port, "TESTER", called_ae,
                                   [*contexts, build_context(Verification, [ImplicitVRLittleEndian])], 65536, timeout=10)
    association.open()
    return association


def request(association: StoreAssociation, context_sop_class: str, command: bytes, data: bytes | None,
            message_id: int) -> dict:
    syntax = ImplicitVRLittleEndian if context_sop_class == Verification else ExplicitVRLittleEndian
    context = association.context_for(context_sop_class, [syntax])
    association.connection.send_message(context.context_id, command, data)
    return association.await_response(message_id).command


def echo_on(association: StoreAssociation, message_id: int) -> int:
    command = commands.encode({commands.AFFECTED_SOP_CLASS_UID: Verification, commands.COMMAND_FIELD: commands.C_ECHO_RQ,
                               commands.MESSAGE_ID: message_id, commands.COMMAND_DATA_SET_TYPE: commands.NO_DATA_SET})
    return request(association, Verification, command, None, message_id)[commands.STATUS]


def store_on(association, ds, message_id, sop_class=None, sop_instance=None, cut: int = 0) -> dict:
    data = encode(ds, False, True)
    command = commands.store_request(message_id, sop_class or ds.SOPClassUID, sop_instance or ds.SOPInstanceUID)
    return request(association, ds.SOPClassUID, command, data[:len(data) - cut], message_id)


# --- The called AE title -------------------------------------------------------------------------


def test_an_association_to_another_called_ae_title_is_rejected_and_the_server_goes_on(scp, caplog):
    _ae, port = scp
    with pytest.raises(AssociationRejected) as rejected:
        raw_association(port, CTImageStorage, called_ae="NOT_PACSONE")
    assert rejected.value.diagnosis == (0x01, 0x01, 0x07)  # permanent, service user, called AE title
    assert str(rejected.value) == ("NOT_PACSONE rejected the association: Called AE title not recognised "
                                   "(permanent; result/source/reason 010107)")
    assert echo_status(port, ae_title="PACSONE") == status.SUCCESS
    logged = ("association rejected calling_ae=TESTER called_ae=NOT_PACSONE address=127.0.0.1 result=1 source=1 "
              "reason=7")
    deadline = time.monotonic() + 5  # the server logs it on its own thread, after sending the rejection
    while logged not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged in caplog.text


def answering_acceptor(answer: bytes) -> socket.socket:
    """A listener that reads one A-ASSOCIATE-RQ whole (no reset on close) and sends `answer`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        peer, _ = listener.accept()
        header = peer.recv(6, socket.MSG_WAITALL)
        peer.recv(int.from_bytes(header[2:6], "big"), socket.MSG_WAITALL)
        peer.sendall(answer)
        peer.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.mark.parametrize("answer,refusal", [
    (bytes([0x03, 0, 0, 0, 0, 2, 0, 1]), "an A-ASSOCIATE-RJ of 2 bytes, not 4"),
    (bytes([0x03, 0, 0, 0, 0, 4, 0, 2, 7, 9]),  # source 7 is not in PS3.8
     r"ODD rejected the association: no known reason \(transient: it may accept later; result/source/reason 020709\)"),
])
def test_an_odd_rejection_is_a_refusal_with_its_reason(answer, refusal):
    listener = answering_acceptor(answer)
    association = StoreAssociation("127.0.0.1", listener.getsockname()[1], "TESTER", "ODD",
                                   [build_context(Verification)], 65536, timeout=5)
    try:
        with pytest.raises(AssociationRefused, match=refusal):
            association.open()
    finally:
        listener.close()


def test_any_called_ae_title_is_accepted_when_configured(scp, settings):
    _ae, port = scp
    settings.PACS_ACCEPT_CALLED_AE = "any"
    assert echo_status(port, ae_title="WHATEVER") == status.SUCCESS


def test_every_configured_instance_ae_title_is_ours(transactional_db, settings):
    settings.PACS_DICOM_INSTANCES = [("PACSONE", 11112), ("SECOND", 11113)]
    port = free_port()
    server = start_server("PACSONE", port, host="127.0.0.1")
    try:
        assert echo_status(port, ae_title="SECOND") == status.SUCCESS
        assert echo_status(port, ae_title="THIRD") is None
    finally:
        stop_server(server, grace_seconds=2)


# --- Storage SOP classes we do not know ------------------------------------------------------------


@pytest.mark.parametrize("sop_class", [GE_PRIVATE_3D_MODEL, SIEMENS_CSA_NON_IMAGE, "1.2.840.10008.5.1.4.1.1.999"])
def test_a_storage_sop_class_pynetdicom_does_not_know_is_stored_as_received(scp, sop_class):
    _ae, port = scp
    ds = make_dataset(SOPClassUID=sop_class)
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established

    code = assoc.send_c_store(ds).Status
    assoc.release()

    assert code == status.SUCCESS
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert instance.sop_class_uid == sop_class
    stored = storage.absolute_path(instance.storage_location, instance.file_path)
    assert dcmread(stored).SOPClassUID == sop_class
    assert dataset_bytes(stored) == encode(ds, False, True)


def test_unknown_storage_sop_classes_are_refused_when_configured(scp, settings):
    _ae, port = scp
    settings.PACS_ACCEPT_UNKNOWN_SOP_CLASSES = False
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(GE_PRIVATE_3D_MODEL, ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    accepted = {context.abstract_syntax for context in assoc.accepted_contexts}
    assoc.release()
    assert accepted == {Verification}


def accepted_by(port: int, *sop_classes: str) -> set:
    ae = AE(ae_title="MODALITY")
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    accepted = {(context.abstract_syntax, context.transfer_syntax[0]) for context in assoc.accepted_contexts}
    assoc.release()
    return accepted


def test_a_request_sent_again_is_answered_as_the_first_and_policy_changes_still_count(scp, settings, monkeypatch):
    """The negotiation of an A-ASSOCIATE-RQ is kept by its bytes (acceptor.NegotiationCache): the
    same request gets the same contexts without being negotiated again; a context accepted by the
    unknown-SOP-class policy is negotiated every time."""
    from pacsone.dicom.net import association_request

    _ae, port = scp
    negotiated = []
    real = association_request.negotiate
    monkeypatch.setattr(association_request, "negotiate", lambda *args: negotiated.append(1) or real(*args))
    first = accepted_by(port, CTImageStorage, Verification)
    assert accepted_by(port, CTImageStorage, Verification) == first == {(CTImageStorage, ExplicitVRLittleEndian),
                                                                        (Verification, ExplicitVRLittleEndian)}
    assert len(negotiated) == 1

    assert (GE_PRIVATE_3D_MODEL, ExplicitVRLittleEndian) in accepted_by(port, GE_PRIVATE_3D_MODEL, Verification)
    settings.PACS_ACCEPT_UNKNOWN_SOP_CLASSES = False
    assert accepted_by(port, GE_PRIVATE_3D_MODEL, Verification) == {(Verification, ExplicitVRLittleEndian)}
    settings.PACS_ACCEPT_UNKNOWN_SOP_CLASSES = True
    assert (GE_PRIVATE_3D_MODEL, ExplicitVRLittleEndian) in accepted_by(port, GE_PRIVATE_3D_MODEL, Verification)
    assert len(negotiated) == 4


def test_standard_sop_classes_of_other_services_are_not_taken_for_storage():
    assert is_storage_sop_class(GE_PRIVATE_3D_MODEL) and is_storage_sop_class(CTImageStorage)
    assert is_storage_sop_class("1.2.840.10008.5.1.4.1.1.999")  # a storage class newer than pynetdicom
    for uid in (ModalityWorklistInformationFind, "1.2.840.10008.5.1.1.9",  # print
                "1.2.840.10008.5.1.4.1.2.99", "1.2.840.10008.1.2.1", "not.a.uid"):
        assert not is_storage_sop_class(uid), uid


def test_a_worklist_query_is_accepted_for_the_worklist_service_not_as_storage(scp):
    """The worklist SOP class is accepted because the Modality Worklist SCP serves it
    (pacsone/dicom/worklist.py), not by the unknown-storage policy (is_storage_sop_class above)."""
    _ae, port = scp
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    accepted = {context.abstract_syntax for context in assoc.accepted_contexts}
    assoc.release()
    assert accepted == {Verification, ModalityWorklistInformationFind}
    assert not is_storage_sop_class(ModalityWorklistInformationFind)


# --- Services keyed by command and SOP class -------------------------------------------------------


def test_a_c_find_on_a_context_accepted_for_storage_only_is_not_supported_and_the_association_goes_on(scp):
    _ae, port = scp
    association = raw_association(port, SIEMENS_CSA_NON_IMAGE)
    find = commands.encode({commands.AFFECTED_SOP_CLASS_UID: SIEMENS_CSA_NON_IMAGE,
                            commands.COMMAND_FIELD: commands.C_FIND_RQ, commands.MESSAGE_ID: 1, commands.PRIORITY: 0,
                            commands.COMMAND_DATA_SET_TYPE: commands.HAS_DATA_SET})
    identifier = make_dataset()
    del identifier.PixelData

    answer = request(association, SIEMENS_CSA_NON_IMAGE, find, encode(identifier, False, True), 1)

    assert answer[commands.STATUS] == status.SOP_CLASS_NOT_SUPPORTED
    assert answer[commands.COMMAND_FIELD] == commands.C_FIND_RSP
    assert echo_on(association, 2) == status.SUCCESS
    association.release()


def test_a_c_store_naming_a_sop_class_other_than_its_context_is_not_supported(scp):
    _ae, port = scp
    association = raw_association(port, CTImageStorage)
    ds = make_dataset()

    answer = store_on(association, ds, 1, sop_class=StudyRootQueryRetrieveInformationModelFind)

    assert answer[commands.STATUS] == status.SOP_CLASS_NOT_SUPPORTED
    assert echo_on(association, 2) == status.SUCCESS
    association.release()
    assert not Instance.objects.exists() and temp_leftovers() == []


# --- Bad data sets ----------------------------------------------------------------------------------


def test_a_truncated_data_set_is_refused_and_the_association_goes_on(scp):
    _ae, port = scp
    association = raw_association(port, CTImageStorage)
    bad, good = make_dataset(), make_dataset()

    refused = store_on(association, bad, 1, cut=700)
    stored = store_on(association, good, 2)
    association.release()

    assert refused[commands.STATUS] == status.CANNOT_UNDERSTAND
    assert refused[commands.ERROR_COMMENT] == "truncated data set: (7FE0,0010) runs 700 bytes past the end"
    assert stored[commands.STATUS] == status.SUCCESS
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [good.SOPInstanceUID]
    assert len(stored_files()) == 1 and temp_leftovers() == []


def test_a_truncated_file_sent_by_pynetdicom_gets_a_failure_status(scp, tmp_path, monkeypatch):
    _ae, port = scp
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # the file's bytes as they are
    whole = write_dataset(make_dataset(), tmp_path / "whole.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-1000])
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")

    refused = assoc.send_c_store(cut)
    stored = assoc.send_c_store(whole)
    assoc.release()

    assert refused.Status == status.CANNOT_UNDERSTAND
    assert refused.ErrorComment == "truncated data set: (7FE0,0010) runs 1000 bytes past the end"
    assert stored.Status == status.SUCCESS and Instance.objects.count() == 1


MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@pytest.mark.parametrize("field", ["SOPInstanceUID", "SOPClassUID"])
def test_a_c_store_whose_data_set_names_another_instance_is_refused(scp, field):
    _ae, port = scp
    association = raw_association(port, CTImageStorage, MR_IMAGE_STORAGE)
    ds = make_dataset()  # a CT image
    if field == "SOPInstanceUID":
        command = commands.store_request(1, CTImageStorage, "1.2.826.0.1.3680043.99.5")
        context_sop_class = CTImageStorage
    else:  # announced as an MR image
        command = commands.store_request(1, MR_IMAGE_STORAGE, ds.SOPInstanceUID)
        context_sop_class = MR_IMAGE_STORAGE

    refused = request(association, context_sop_class, command, encode(ds, False, True), 1)
    assert echo_on(association, 2) == status.SUCCESS
    association.release()

    assert refused[commands.STATUS] == status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert refused[commands.ERROR_COMMENT] == f"{field} differs from the file meta / C-STORE command"
    assert not Instance.objects.exists() and stored_files() == [] and temp_leftovers() == []


# --- Our implementation identity ----------------------------------------------------------------------


def test_the_accept_and_every_stored_file_name_our_implementation_and_the_sender(scp):
    _ae, port = scp
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE")
    ds = make_dataset()
    assert assoc.send_c_store(ds).Status == status.SUCCESS
    accept = assoc.acceptor
    assoc.release()

    assert (accept.implementation_class_uid, accept.implementation_version_name) == (
        IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)
    instance = Instance.objects.get()
    meta = dcmread(storage.absolute_path(instance.storage_location, instance.file_path)).file_meta
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.SourceApplicationEntityTitle == "MODALITY"


@pytest.fixture
def peer(transactional_db):
    """A pynetdicom SCP that notes the implementation of each requestor: (RemoteAE, notes)."""
    seen = []

    def note(event):
        seen.append((event.assoc.requestor.implementation_class_uid, event.assoc.requestor.implementation_version_name))

    ae = AE(ae_title="PEER")
    ae.add_supported_context(Verification)
    ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_REQUESTED, note), (evt.EVT_C_STORE, lambda event: 0x0000)])
    yield RemoteAE.objects.create(ae_title="PEER", host="127.0.0.1", port=port), seen
    server.shutdown()


def test_our_requests_name_our_implementation(peer, tmp_path):
    remote, seen = peer
    assert scu.echo(remote) == status.SUCCESS  # pynetdicom as our SCU library
    assert scu.store(remote, [write_dataset(make_dataset(), tmp_path / "a.dcm")]).sent == 1  # our own requestor
    assert seen == [(IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME)] * 2
