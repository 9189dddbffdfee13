"""What the REST API shows each role: the lists hold exactly the visible studies and patients,
hidden details are 404, and an API token gets the same answers as a session. The status of
every URL for every role is tests/test_access_matrix.py's."""

import pytest

from accounts.tokens import issue_token
from tests.people import ROLES, VISIBLE, make_world

pytestmark = pytest.mark.django_db

OK, REDIRECT, FORBIDDEN, NOT_FOUND = 200, 302, 403, 404

API_ENDPOINTS = {
    "/api/users/": (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "/api/users/{jane}/": (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "/api/groups/": (FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    "/api/journal/": (FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, OK),
    "/api/patients/": (FORBIDDEN, OK, OK, OK, OK),
    "/api/studies/": (FORBIDDEN, OK, OK, OK, OK),
    "/api/schema/": (FORBIDDEN, OK, OK, OK, OK),
    "/api/jobs/": (FORBIDDEN, OK, OK, OK, OK),
    "/api/statistics/": (FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, OK),  # sysadmin holds Monitor here  # the API's shape, no data: public for clients
}


@pytest.fixture
def world():
    return make_world()


def client_for(role, world, client, api_token=False):
    user = world.users[role]
    if user is None:
        return client, {}
    if api_token:
        _token, key = issue_token(user, "test")
        return client, {"HTTP_AUTHORIZATION": f"Token {key}"}
    client.force_login(user)
    return client, {}


def _cases(table):
    return [(url, role, expected[i]) for url, expected in table.items() for i, role in enumerate(ROLES)]


@pytest.mark.parametrize("url,role,expected", _cases(API_ENDPOINTS))
def test_api_access_with_a_token(world, client, url, role, expected):
    client, headers = client_for(role, world, client, api_token=True)
    response = client.get(url.format(jane=world.users["physician"].pk), **headers)
    assert response.status_code == expected


@pytest.mark.parametrize("api_token", [False, True], ids=["session", "token"])
@pytest.mark.parametrize("role", ROLES)
def test_study_list_shows_exactly_the_visible_studies_and_counts(world, client, role, api_token):
    client, headers = client_for(role, world, client, api_token)
    response = client.get("/api/studies/", **headers)
    if role == "anonymous":
        assert response.status_code == FORBIDDEN
        return
    body = response.json()
    expected = {world.studies[name].study_instance_uid for name in VISIBLE[role]}
    assert {s["study_instance_uid"] for s in body["results"]} == expected
    assert body["count"] == len(expected)
    hidden = {s.study_instance_uid for s in world.studies.values()} - expected
    assert not any(uid in response.content.decode() for uid in hidden)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("study", ["public", "own", "other"])
def test_study_detail_is_404_when_not_visible(world, client, role, study):
    client, headers = client_for(role, world, client)
    uid = world.studies[study].study_instance_uid
    response = client.get(f"/api/studies/{uid}/", **headers)
    if role == "anonymous":
        assert response.status_code == FORBIDDEN
    elif study in VISIBLE[role]:
        assert response.status_code == OK and response.json()["study_instance_uid"] == uid
    else:
        assert response.status_code == NOT_FOUND
        assert world.studies[study].patient.patient_id not in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_patient_list_shows_only_visible_patients(world, client, role):
    client, headers = client_for(role, world, client)
    response = client.get("/api/patients/", **headers)
    if role == "anonymous":
        assert response.status_code == FORBIDDEN
        return
    expected = {world.studies[name].patient.patient_id for name in VISIBLE[role]}
    assert {p["patient_id"] for p in response.json()["results"]} == expected


@pytest.mark.parametrize("role", ROLES)
def test_patient_detail_is_404_when_not_visible(world, client, role):
    client, headers = client_for(role, world, client)
    patient = world.studies["other"].patient
    response = client.get(f"/api/patients/{patient.pk}/", **headers)
    expected = {"anonymous": FORBIDDEN, "power": OK, "root": OK}.get(role, NOT_FOUND)
    assert response.status_code == expected


def test_the_openapi_schema_is_valid_and_lists_the_resources(client, world):
    client.force_login(world.users["physician"])
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for resource in ("/api/studies/", "/api/patients/", "/api/users/", "/api/groups/", "/api/journal/", "/api/jobs/",
                     "/api/statistics/", "/api/auth/token/"):
        assert resource in paths
