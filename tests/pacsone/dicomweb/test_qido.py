"""QIDO-RS: a real client (dicomweb-client) against a live server sees exactly the studies the
pages show each role; standard matching, includefield, limit/offset; bad input is a 400."""

import pytest
from requests import HTTPError

from audit.models import Action, Entry
from tests.people import EVERY_ROLE, VISIBLE

from .conftest import CT_SERIES, CT_STUDY, client_for

pytestmark = pytest.mark.django_db(transaction=True)


def uids(answers, tag="0020000D") -> set[str]:
    return {answer[tag]["Value"][0] for answer in answers}


def value(answer, tag):
    return (answer.get(tag) or {}).get("Value", [None])[0]


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_each_role_sees_by_qido_exactly_the_studies_the_pages_show(live_server, world, role):
    client = client_for(live_server, world.users[role])
    expected = {world.studies[name].study_instance_uid for name in VISIBLE[role]}
    assert uids(client.search_for_studies()) == expected
    assert uids(client.search_for_series()) == expected
    assert uids(client.search_for_instances()) == expected
    hidden = {study.study_instance_uid for study in world.studies.values()} - expected
    for uid in hidden:  # a hidden study has no series or instances either
        assert client.search_for_series(study_instance_uid=uid) == []
        assert client.search_for_instances(study_instance_uid=uid) == []
        assert client.search_for_studies(search_filters={"StudyInstanceUID": uid}) == []


def test_matching_works_as_in_c_find(live_server, world, ct_study):
    client = client_for(live_server, world.users["root"])
    assert uids(client.search_for_studies(search_filters={"PatientName": "slice*"})) == {CT_STUDY}
    assert uids(client.search_for_studies(search_filters={"PatientName": "SLICE^CARL"})) == {CT_STUDY}
    assert len(client.search_for_studies(search_filters={"StudyDate": "20240101-20240110"})) == 4
    assert client.search_for_studies(search_filters={"StudyDate": "20250101-"}) == []
    listed = f"{CT_STUDY},{world.studies['public'].study_instance_uid}"
    assert uids(client.search_for_studies(search_filters={"StudyInstanceUID": listed})) == {
        CT_STUDY, world.studies["public"].study_instance_uid}
    assert uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"})) == set()
    # A key no column holds is matched on the stored headers, as C-FIND does.
    found = client.search_for_series(search_filters={"ProtocolName": "CHEST*"}, fields=["ProtocolName"])
    assert uids(found, "0020000E") == {CT_SERIES} and value(found[0], "00181030") == "CHEST ROUTINE"
    assert client.search_for_series(search_filters={"ProtocolName": "HEAD*"}) == []
    instances = client.search_for_instances(CT_STUDY, CT_SERIES, search_filters={"InstanceNumber": "2"})
    assert [value(answer, "00080018") for answer in instances] == [f"{CT_SERIES}.2"]


def test_includefield_adds_attributes_and_all_gives_the_header(live_server, world, ct_study):
    client = client_for(live_server, world.users["root"])
    study = client.search_for_studies(search_filters={"StudyInstanceUID": CT_STUDY}, fields=["Manufacturer"])[0]
    assert value(study, "00080070") == "ACME"
    assert value(study, "00201208") == 3 and value(study, "00080061") == "CT"
    assert value(study, "00081190").endswith(f"/dicomweb/studies/{CT_STUDY}")
    everything = client.search_for_instances(CT_STUDY, CT_SERIES, fields=["all"],
                                             search_filters={"InstanceNumber": "1"})[0]
    assert value(everything, "00281050") == 40  # Window Center, from the stored header
    assert "7FE00010" not in everything


def test_limit_and_offset_page_through_the_answers(live_server, world, ct_study):
    client = client_for(live_server, world.users["root"])
    every = [value(a, "00080018") for a in client.search_for_instances(CT_STUDY)]
    pages = [client.search_for_instances(CT_STUDY, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [value(a, "00080018") for page in pages for a in page] == every
    assert [len(page) for page in pages] == [2, 1, 0]
    # Instances searched across a study's series say which series each is in, and where to get it.
    first = pages[0][0]
    assert value(first, "0020000E") == CT_SERIES and value(first, "00080060") == "CT"
    assert value(first, "00081190").endswith(f"/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{value(first, '00080018')}")


def test_a_search_is_journaled_once(client, world, ct_study):
    client.force_login(world.users["physician"])
    before = Entry.objects.order_by("-id").first().pk
    response = client.get("/dicomweb/studies", {"PatientName": "OWN*"})
    assert response.status_code == 200
    entries = list(Entry.objects.filter(id__gt=before))
    assert [entry.action for entry in entries] == [Action.SEARCH]
    assert entries[0].username == "jane" and "PatientName=OWN*" in entries[0].detail


@pytest.mark.parametrize("query, reason", [
    ({"NoSuchKeyword": "x"}, "neither a DICOM keyword"),
    ({"StudyDate": "2024-13-45"}, ""),
    ({"StudyInstanceUID": "1.2.abc"}, "not a valid UID"),
    ({"limit": "ten"}, "whole number"),
    ({"offset": "-1"}, "whole number"),
    ({"InstanceNumber": "one"}, "cannot hold 'one'"),
    ({"ReferencedStudySequence.ReferencedSOPInstanceUID": "1.2"}, "sequence"),
    ({"includefield": "NotAnAttribute"}, "neither a DICOM keyword"),
])
def test_bad_queries_are_a_400_with_the_reason(client, world, query, reason):
    client.force_login(world.users["root"])
    response = client.get("/dicomweb/studies", query)
    assert response.status_code == 400, response.content
    assert reason in response.content.decode()


def test_fuzzy_matching_is_refused_politely(client, world):
    client.force_login(world.users["root"])
    response = client.get("/dicomweb/studies", {"fuzzymatching": "true", "PatientName": "PUBLIC*"})
    assert response.status_code == 200 and "fuzzymatching" in response["Warning"]
    assert len(response.json()) == 1


def test_only_dicom_json_is_offered(client, world):
    client.force_login(world.users["root"])
    assert client.get("/dicomweb/studies", HTTP_ACCEPT="application/dicom+xml").status_code == 406
    assert client.get("/dicomweb/studies", HTTP_ACCEPT="application/dicom+json").status_code == 200


def test_a_hidden_study_is_absent_for_a_client_too(live_server, world):
    client = client_for(live_server, world.users["physician"])
    other = world.studies["other"].study_instance_uid
    with pytest.raises(HTTPError) as refused:
        client.retrieve_study_metadata(other)
    assert refused.value.response.status_code == 404


@pytest.mark.parametrize("level, path_uids", [("STUDY", {}), ("SERIES", {}), ("IMAGE", {"StudyInstanceUID": CT_STUDY})])
def test_the_json_answers_are_the_c_find_answers(world, ct_study, level, path_uids):
    """QIDO builds its JSON from the rows without a Dataset: the same as C-FIND's answers as JSON."""
    from django.http import QueryDict

    from pacsone.dicom import query as cfind
    from pacsone.dicomweb.qido import _JsonAnswerer, build_identifier

    params = QueryDict("includefield=Manufacturer&includefield=ProtocolName")
    identifier, _ = build_identifier(params, level, path_uids, across_studies=level != "STUDY")
    query = cfind.build_query(identifier, cfind.STUDY_ROOT)
    fast = [answer for answer, _ in _JsonAnswerer(query).json_answers()]
    slow = []
    for ds in cfind.Answerer(query).answers():
        del ds.QueryRetrieveLevel
        slow.append(ds.to_json_dict())
    assert len(fast) == len(slow) > 0
    assert fast == slow
