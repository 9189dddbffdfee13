"""Who may query and retrieve over DICOM, and what they reach (README "DICOM access"), over real
associations: pynetdicom and dcmtk's findscu as peers, the SCP on 127.0.0.1.

The archive: Jane Smith's private study A and a private study B of the same patient P1 that
names nobody; a private study C of St Mary's (patient P2); a public study D (patient P3).
Jane sees A and D; the group "stmary" (description "St Mary") sees C and D; an unlinked
registered AE sees all four."""

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from accounts.models import UserGroup
from pacsone.dicom import policy
from pacsone.ingest import Origin, ingest_file
from pacsone.models import RemoteAE, Scope, Study
from pacsone.visibility import set_study_public
from tests.helpers import free_port, journaled, make_file, rejection
from tests.pacsone.dicom.qr_archive import identifier
from tests.pacsone.dicom.test_dcmtk_interop import dcmtk
from tests.people import make_user

ROOT = "1.2.826.0.1.3680043.10.77"
A, B, C, D = (f"{ROOT}.{n}" for n in (1, 2, 3, 4))
REFUSED = 0x0124


@pytest.fixture
def archive(scp, tmp_path):
    files = [
        dict(study_uid=A, series_uid=A + ".1", sop_uid=A + ".1.1", patient_id="P1", ReferringPhysicianName="Smith^Jane",
             InstitutionName="General Hospital"),
        dict(study_uid=A, series_uid=A + ".1", sop_uid=A + ".1.2", patient_id="P1", ReferringPhysicianName="Smith^Jane",
             InstitutionName="General Hospital", InstanceNumber=2),
        dict(study_uid=B, series_uid=B + ".1", sop_uid=B + ".1.1", patient_id="P1", InstitutionName="Other"),
        dict(study_uid=C, series_uid=C + ".1", sop_uid=C + ".1.1", patient_id="P2", InstitutionName="St Mary"),
        dict(study_uid=D, series_uid=D + ".1", sop_uid=D + ".1.1", patient_id="P3", InstitutionName="Other"),
    ]
    for i, kwargs in enumerate(files):
        assert ingest_file(make_file(tmp_path / "in", f"{i}.dcm", **kwargs), Origin("import")).outcome.accepted
    set_study_public(Study.objects.get(study_instance_uid=D), True)
    return scp


@pytest.fixture
def jane(db):
    return make_user("jane", first_name="Jane", last_name="Smith")


@pytest.fixture
def stmary(db):
    return UserGroup.objects.create(name="stmary", description="St Mary")


def register(ae_title: str, host: str = "127.0.0.1", port: int = 104, **fields) -> RemoteAE:
    return RemoteAE.objects.create(ae_title=ae_title, host=host, port=port, **fields)


# --- Peers --------------------------------------------------------------------------------------------


def _ae(calling: str, *contexts) -> AE:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def find(port: int, calling: str, ds: Dataset, model=StudyRootQueryRetrieveInformationModelFind):
    """(statuses, answers, error comment of the final status)."""
    assoc = _ae(calling, model).associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    statuses, answers, comment = [], [], ""
    try:
        for status, answer in assoc.send_c_find(ds, model):
            statuses.append(status.Status)
            if answer is not None and status.Status in (0xFF00, 0xFF01):
                answers.append(answer)
            comment = str(status.get("ErrorComment", comment))
    finally:
        assoc.release()
    return statuses, answers, comment


def found(port: int, calling: str, level: str, keyword: str, model=StudyRootQueryRetrieveInformationModelFind,
          **keys) -> set:
    statuses, answers, _ = find(port, calling, identifier(level, **{keyword: "", **keys}), model)
    assert statuses[-1] == 0x0000, statuses
    return {str(answer.get(keyword)) for answer in answers}


def get(port: int, calling: str, ds: Dataset, model=StudyRootQueryRetrieveInformationModelGet):
    """C-GET, keeping what arrives: (statuses, SOP Instance UIDs received)."""
    ae = _ae(calling, model)
    ae.add_requested_context(CTImageStorage)
    arrived = []

    def on_store(event):
        arrived.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    assoc = ae.associate("127.0.0.1", port, ae_title="PACSONE", ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    try:
        statuses = [status.Status for status, _ in assoc.send_c_get(ds, model)]
    finally:
        assoc.release()
    return statuses, sorted(arrived)


@pytest.fixture
def destination(db):
    """A pynetdicom storage SCP registered as the move destination DEST: the UIDs it received."""
    received = []

    def on_store(event):
        received.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    ae = AE(ae_title="DEST")
    ae.add_supported_context(CTImageStorage)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    register("DEST", port=port, may_query=False)
    yield received
    server.shutdown()


def move(port: int, calling: str, ds: Dataset, model=StudyRootQueryRetrieveInformationModelMove) -> list[int]:
    assoc = _ae(calling, model).associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.is_established
    try:
        return [status.Status for status, _ in assoc.send_c_move(ds, "DEST", model)]
    finally:
        assoc.release()


def instances(study: str, count: int = 1) -> list[str]:
    return [f"{study}.1.{n}" for n in range(1, count + 1)]


# --- Unknown AEs, wrong addresses ---------------------------------------------------------------------------


def test_an_unknown_ae_gets_no_patient_data_and_each_refusal_is_journaled(archive, destination):
    _ae_title, port = archive
    statuses, answers, comment = find(port, "STRANGER", identifier("STUDY", StudyInstanceUID=""))
    assert statuses == [REFUSED] and answers == [] and "not recognized" in comment
    assert get(port, "STRANGER", identifier("STUDY", StudyInstanceUID=A)) == ([REFUSED], [])
    assert move(port, "STRANGER", identifier("STUDY", StudyInstanceUID=A)) == [REFUSED] and destination == []
    for action in ("query", "retrieve", "move"):
        entry = journaled(action=action, outcome="denied", ae_title="STRANGER").get()
        assert entry.address == "127.0.0.1" and "calling AE title STRANGER not recognized" in entry.detail
    # The association itself stands: C-ECHO (and C-STORE) still work.
    assoc = _ae("STRANGER", Verification).associate("127.0.0.1", port, ae_title="PACSONE")
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_findscu_from_an_unregistered_ae_gets_no_patient_data(archive, tmp_path):
    _ae_title, port = archive
    out = tmp_path / "answers"
    out.mkdir()
    result = dcmtk("findscu", "-v", "-S", "-aet", "FINDSCU", "-aec", "PACSONE", "-X", "-od", out,
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientName", "-k", "StudyInstanceUID", "127.0.0.1", port)
    # dcmtk 3.6.7 knows 0x0124 (PS3.7 C.5, Refused: Not Authorized) for C-STORE only, so it prints it as
    # "Unknown Status: 0x124"; what matters is that no answer came.
    assert "Final Find Response (Unknown Status: 0x124)" in result.stdout, result.stdout
    assert list(out.glob("rsp*.dcm")) == []
    assert journaled(action="query", outcome="denied", ae_title="FINDSCU").exists()


@pytest.mark.parametrize("where", [{"host": "10.9.9.9"}, {"networks": "10.0.0.0/8, 192.168.1.7"}])
def test_a_registered_ae_calling_from_another_address_is_refused(archive, where, destination):
    _ae_title, port = archive
    register("WS1", **{"host": "127.0.0.1", **where})
    statuses, answers, comment = find(port, "WS1", identifier("STUDY", StudyInstanceUID=""))
    assert statuses == [REFUSED] and answers == [] and "not registered for address 127.0.0.1" in comment
    assert get(port, "WS1", identifier("STUDY", StudyInstanceUID=A)) == ([REFUSED], [])
    assert move(port, "WS1", identifier("STUDY", StudyInstanceUID=A)) == [REFUSED] and destination == []
    assert journaled(action="query", outcome="denied", ae_title="WS1").get().address == "127.0.0.1"
    assert journaled(action="retrieve", outcome="denied", ae_title="WS1").exists()
    assert journaled(action="move", outcome="denied", ae_title="WS1").exists()


@pytest.mark.parametrize("where", [{"host": "10.9.9.9", "networks": "127.0.0.0/8"}, {"host": "localhost"}])
def test_a_registered_ae_calling_from_its_network_or_host_name_is_served(archive, where):
    _ae_title, port = archive
    register("WS1", **where)
    assert found(port, "WS1", "STUDY", "StudyInstanceUID") == {A, B, C, D}


def test_a_registered_ae_without_the_query_permission_is_refused(archive):
    _ae_title, port = archive
    register("CT1", may_query=False)
    statuses, _answers, comment = find(port, "CT1", identifier("STUDY", StudyInstanceUID=""))
    assert statuses == [REFUSED] and "may not query" in comment


# --- What a linked AE sees -----------------------------------------------------------------------------------


def test_an_ae_linked_to_jane_finds_only_her_studies_at_every_level(archive, jane):
    _ae_title, port = archive
    register("JANEWS", scope=Scope.USER, user=jane)
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID") == {A, D}
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID", StudyInstanceUID=B) == set()  # as if B did not exist
    assert found(port, "JANEWS", "SERIES", "SeriesInstanceUID") == {A + ".1", D + ".1"}
    assert found(port, "JANEWS", "IMAGE", "SOPInstanceUID", StudyInstanceUID=A, SeriesInstanceUID=A + ".1") == \
        set(instances(A, 2))
    assert found(port, "JANEWS", "IMAGE", "SOPInstanceUID", StudyInstanceUID=B, SeriesInstanceUID=B + ".1") == set()
    patient_root = PatientRootQueryRetrieveInformationModelFind
    assert found(port, "JANEWS", "PATIENT", "PatientID", patient_root) == {"P1", "P3"}
    # P1 has two studies; Jane's AE is told of the one it may see.
    statuses, answers, _ = find(port, "JANEWS", identifier("PATIENT", PatientID="P1", NumberOfPatientRelatedStudies="",
                                                           NumberOfPatientRelatedInstances=""), patient_root)
    assert statuses[-1] == 0 and [(a.NumberOfPatientRelatedStudies, a.NumberOfPatientRelatedInstances)
                                  for a in answers] == [(1, 2)]
    assert journaled(action="query", outcome="success", ae_title="JANEWS", detail__contains="PatientID=P1").exists()


def test_findscu_from_an_ae_linked_to_jane_finds_only_her_studies(archive, jane, tmp_path):
    _ae_title, port = archive
    register("FINDSCU", scope=Scope.USER, user=jane)
    out = tmp_path / "answers"
    out.mkdir()
    result = dcmtk("findscu", "-S", "-aet", "FINDSCU", "-aec", "PACSONE", "-X", "-od", out,
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "127.0.0.1", port)
    assert result.returncode == 0, result.stdout
    assert {dcmread(path).StudyInstanceUID for path in out.glob("rsp*.dcm")} == {A, D}


def test_an_ae_linked_to_jane_retrieves_only_her_studies(archive, jane, destination):
    _ae_title, port = archive
    register("JANEWS", scope=Scope.USER, user=jane)
    # A study she may not see answers as one that does not exist: success, nothing sent.
    assert get(port, "JANEWS", identifier("STUDY", StudyInstanceUID=B)) == ([0x0000], [])
    assert move(port, "JANEWS", identifier("STUDY", StudyInstanceUID=B))[-1] == 0x0000 and destination == []
    # Her patient P1 also has study B: only A's instances are sent.
    patient = identifier("PATIENT", PatientID="P1")
    statuses, arrived = get(port, "JANEWS", patient, PatientRootQueryRetrieveInformationModelGet)
    assert statuses[-1] == 0x0000 and arrived == instances(A, 2)
    assert move(port, "JANEWS", patient, PatientRootQueryRetrieveInformationModelMove)[-1] == 0x0000
    assert sorted(destination) == instances(A, 2)
    statuses, arrived = get(port, "JANEWS", identifier("IMAGE", StudyInstanceUID=B, SeriesInstanceUID=B + ".1",
                                                       SOPInstanceUID=B + ".1.1"))
    assert arrived == []
    retrieved = {e.study_uid for e in journaled(action__in=["retrieve", "move"], ae_title="JANEWS")}
    assert B not in retrieved and A in retrieved


def test_an_ae_linked_to_a_group_sees_the_groups_studies(archive, stmary, destination):
    _ae_title, port = archive
    register("WARD", scope=Scope.GROUP, group=stmary)
    assert found(port, "WARD", "STUDY", "StudyInstanceUID") == {C, D}
    assert found(port, "WARD", "PATIENT", "PatientID", PatientRootQueryRetrieveInformationModelFind) == {"P2", "P3"}
    assert get(port, "WARD", identifier("STUDY", StudyInstanceUID=A)) == ([0x0000], [])
    assert get(port, "WARD", identifier("STUDY", StudyInstanceUID=C))[1] == instances(C)
    assert move(port, "WARD", identifier("PATIENT", PatientID="P1"), PatientRootQueryRetrieveInformationModelMove)[-1] == 0
    assert destination == []


def test_an_unlinked_registered_ae_sees_the_whole_archive(archive, destination):
    _ae_title, port = archive
    register("PACS2")
    assert found(port, "PACS2", "STUDY", "StudyInstanceUID") == {A, B, C, D}
    assert move(port, "PACS2", identifier("PATIENT", PatientID="P1"), PatientRootQueryRetrieveInformationModelMove)[-1] == 0
    assert sorted(destination) == sorted(instances(A, 2) + instances(B))


def test_an_ae_whose_linked_user_was_deleted_sees_nothing(archive, jane):
    _ae_title, port = archive
    register("JANEWS", scope=Scope.USER, user=jane)
    jane.delete()
    assert RemoteAE.objects.get(ae_title="JANEWS").sees() == "nothing (its user was deleted)"
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID") == set()


def test_an_ae_linked_to_a_disabled_user_sees_nothing(archive, jane):
    _ae_title, port = archive
    register("JANEWS", scope=Scope.USER, user=jane)
    jane.is_active = False
    jane.save()
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID") == set()


# --- The open policy -----------------------------------------------------------------------------------------


def test_the_open_policy_lets_any_ae_query_but_a_linked_ae_still_sees_only_its_users(archive, jane, settings):
    _ae_title, port = archive
    settings.PACS_DICOM_QUERY_POLICY = "open"
    assert found(port, "STRANGER", "STUDY", "StudyInstanceUID") == {A, B, C, D}
    register("JANEWS", host="10.9.9.9", scope=Scope.USER, user=jane)
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID") == {A, D}


# --- Associations and stores under PACS_ACCEPT_CALLING_AE=registered ----------------------------------------


@pytest.mark.parametrize("calling,registered", [("STRANGER", None), ("WS1", "10.9.9.9")])
def test_registered_associations_reject_unknown_callers_and_journal_it(archive, settings, calling, registered):
    _ae_title, port = archive
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    if registered:
        register(calling, host=registered)
    assert rejection(port, calling) == (0x01, 0x01, 0x03)  # permanent, service user, calling AE title
    entry = journaled(action="association", outcome="denied", ae_title=calling).get()
    assert entry.address == "127.0.0.1" and entry.detail.startswith("rejected: ")
    assert ("not recognized" if registered is None else "not registered for address 127.0.0.1") in entry.detail


def test_a_refused_store_is_journaled(archive, settings, tmp_path):
    _ae_title, port = archive
    settings.PACS_ACCEPT_CALLING_AE = "registered"
    register("CT1", may_store=False)
    ds = dcmread(make_file(tmp_path, "new.dcm", sop_uid=ROOT + ".9.9"))
    assoc = _ae("CT1", CTImageStorage).associate("127.0.0.1", port, ae_title="PACSONE")
    try:
        assert assoc.send_c_store(ds).Status == REFUSED
    finally:
        assoc.release()
    entry = journaled(action="store", outcome="denied", ae_title="CT1").get()
    assert entry.address == "127.0.0.1" and "may not store" in entry.detail and ROOT + ".9.9" in entry.target


# --- Addresses ------------------------------------------------------------------------------------------------


def test_address_matching_handles_ips_networks_names_and_mapped_addresses(db):
    ae = RemoteAE(ae_title="X", host="10.9.9.9", port=104, networks="192.168.0.0/16, 10.1.2.3, fd00::/8, localhost")
    assert policy.address_matches(ae, "192.168.44.1") and policy.address_matches(ae, "::ffff:10.1.2.3")
    assert policy.address_matches(ae, "fd00::1") and policy.address_matches(ae, "127.0.0.1")
    assert not policy.address_matches(ae, "10.9.9.9")  # networks, when given, replace the host
    assert not policy.address_matches(ae, "") and not policy.address_matches(ae, "not-an-ip")
    assert not policy.address_matches(RemoteAE(ae_title="Y", host="no-such-host.invalid", port=1), "127.0.0.1")


def test_header_keys_match_only_within_the_studies_an_ae_may_see(archive, jane, tmp_path):
    """A key matched on the stored headers (no column holds it) cannot reveal a patient through a
    study the AE may not see, nor answer with values from that study's headers."""
    _ae_title, port = archive
    extra = make_file(tmp_path / "extra", "b2.dcm", study_uid=B, series_uid=B + ".1", sop_uid=B + ".1.9",
                      patient_id="P1", InstitutionName="Other", StationName="SECRETROOM")
    assert ingest_file(extra, Origin("import")).outcome.accepted
    register("JANEWS", scope=Scope.USER, user=jane)
    register("WHOLE")
    patient_root = PatientRootQueryRetrieveInformationModelFind
    assert found(port, "WHOLE", "PATIENT", "PatientID", patient_root, StationName="SECRETROOM") == {"P1"}
    assert found(port, "JANEWS", "PATIENT", "PatientID", patient_root, StationName="SECRETROOM") == set()
    assert found(port, "JANEWS", "STUDY", "StudyInstanceUID", StationName="SECRET*") == set()
