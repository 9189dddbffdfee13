"""REST changes: tokens, PATCH of public/read with their privileges and cascade, users and
groups by root, each change journaled."""

import pytest

from accounts.models import User, UserGroup
from audit.models import Entry
from pacsone.models import Patient, Study
from tests.people import PASSWORD, make_study, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def api(client, user):
    client.force_login(user)
    return client


def test_token_for_username_and_password(client, world):
    response = client.post("/api/auth/token/", {"username": "jane", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    studies = client.get("/api/studies/", HTTP_AUTHORIZATION=f"Token {token}")
    assert studies.json()["count"] == 2
    assert Entry.objects.filter(action="login", username="jane", target="API token").exists()


def test_token_with_a_wrong_password_is_401_and_journaled(client, world):
    response = client.post("/api/auth/token/", {"username": "jane", "password": "nope"})
    assert response.status_code == 401
    assert Entry.objects.filter(action="login_failed", target="jane").exists()
    assert client.post("/api/auth/token/", {}).status_code == 400


def test_physician_cannot_make_her_study_public(client, world):
    uid = world.studies["own"].study_instance_uid
    response = api(client, world.users["physician"]).patch(
        f"/api/studies/{uid}/", {"public": True}, content_type="application/json")
    assert response.status_code == 403
    assert Study.objects.get(study_instance_uid=uid).public is False


def test_modify_makes_a_study_public_with_the_cascade_and_a_journal_entry(client, world):
    uid = world.studies["other"].study_instance_uid
    response = api(client, world.users["power"]).patch(
        f"/api/studies/{uid}/", {"public": True}, content_type="application/json")
    assert response.status_code == 200 and response.json()["public"] is True
    assert Patient.objects.get(patient_id="OTH1").public is True  # its only study
    assert Entry.objects.filter(action="modify", study_uid=uid, username="power").exists()
    # now Jane sees it
    client.force_login(world.users["physician"])
    assert client.get(f"/api/studies/{uid}/").status_code == 200


def test_mark_read_needs_mark_study(client, world):
    uid = world.studies["own"].study_instance_uid
    denied = api(client, world.users["physician"]).patch(
        f"/api/studies/{uid}/", {"read": True}, content_type="application/json")
    assert denied.status_code == 403
    done = api(client, world.users["power"]).patch(
        f"/api/studies/{uid}/", {"read": True}, content_type="application/json")
    assert done.status_code == 200 and Study.objects.get(study_instance_uid=uid).read is True
    assert Entry.objects.filter(action="mark", study_uid=uid).exists()


@pytest.mark.parametrize("body", [{"public": "yes"}, {"study_date": "20200101"}, {"patient": 1}])
def test_bad_patch_bodies_are_400_and_change_nothing(client, world, body):
    uid = world.studies["own"].study_instance_uid
    response = api(client, world.users["power"]).patch(f"/api/studies/{uid}/", body, content_type="application/json")
    assert response.status_code == 400
    assert Study.objects.get(study_instance_uid=uid).public is False


def test_making_a_patient_public_shows_all_its_studies_to_everyone(client, world):
    extra = make_study("1.2.826.1.9", "OTH1")
    patient = Patient.objects.get(patient_id="OTH1")
    response = api(client, world.users["power"]).patch(
        f"/api/patients/{patient.pk}/", {"public": True}, content_type="application/json")
    assert response.status_code == 200
    client.force_login(world.users["physician"])
    uids = {s["study_instance_uid"] for s in client.get("/api/studies/").json()["results"]}
    assert {world.studies["other"].study_instance_uid, extra.study_instance_uid} <= uids


def test_study_filters(client, world):
    client = api(client, world.users["power"])

    def uids(query):
        return {s["study_instance_uid"] for s in client.get(f"/api/studies/?{query}").json()["results"]}

    assert uids("patient_name=own*") == {"1.2.826.1.2"}
    assert uids("patient_name=O?HER^PAT") == {"1.2.826.1.3"}
    assert uids("patient_id=PUB1") == {"1.2.826.1.1"}
    assert uids("modality=MR") == set()
    assert uids("modality=ct") == {"1.2.826.1.1", "1.2.826.1.2", "1.2.826.1.3"}
    assert uids("modality=MR,ct") == uids("modality=MR%5CCT") == uids("modality=MR&modality=CT") == uids("modality=ct")
    assert uids("modality=MR&modality=US") == set()
    Study.objects.filter(study_instance_uid="1.2.826.1.2").update(study_date="2024-03-05", accession_number="A77")
    assert uids("study_date=20240301-20240331") == {"1.2.826.1.2"}
    assert uids("study_date=-20240304") == set()
    assert uids("accession_number=A77") == {"1.2.826.1.2"}
    bad = client.get("/api/studies/?study_date=yesterday")
    assert bad.status_code == 400 and "study_date" in bad.json()


def test_root_creates_a_user_with_privileges_and_groups(client, world):
    UserGroup.objects.create(name="Reading room", description="General Hospital")
    client = api(client, world.users["root"])
    response = client.post("/api/users/", {
        "username": "bob", "first_name": "Bob", "last_name": "Jones", "password": "a-Long-passphrase-7",
        "privileges": ["query", "move"], "groups": ["Reading room"],
    }, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "password" not in body and body["privileges"] == ["query", "move"] and body["groups"] == ["Reading room"]
    bob = User.objects.get(username="bob")
    assert bob.check_password("a-Long-passphrase-7")
    assert Entry.objects.filter(action="user_admin", username="root", target="created user bob").exists()


@pytest.mark.parametrize("body", [
    {"username": "x", "password": "a-Long-passphrase-7", "privileges": ["fly"]},
    {"username": "x", "password": "123"},
    {"username": "x"},
])
def test_bad_user_bodies_are_400(client, world, body):
    response = api(client, world.users["root"]).post("/api/users/", body, content_type="application/json")
    assert response.status_code == 400
    assert not User.objects.filter(username="x").exists()


def test_root_disables_a_user_who_then_cannot_use_the_api(client, world):
    jane = world.users["physician"]
    root_client = api(client, world.users["root"])
    response = root_client.patch(f"/api/users/{jane.pk}/", {"is_active": False}, content_type="application/json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    root_client.logout()
    assert client.post("/api/auth/token/", {"username": "jane", "password": PASSWORD}).status_code == 401


def test_root_cannot_lose_its_privileges(client, world):
    root = world.users["root"]
    response = api(client, root).patch(f"/api/users/{root.pk}/", {"is_active": False}, content_type="application/json")
    assert response.status_code == 400


def test_groups_by_root(client, world):
    client = api(client, world.users["root"])
    response = client.post("/api/groups/", {"name": "Clinic", "description": "City Clinic",
                                            "privileges": ["view"], "members": ["jane"]},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    assert UserGroup.objects.get(name="Clinic").members.get().username == "jane"


def test_journal_api_filters(client, world):
    client = api(client, world.users["sysadmin"])
    client.get("/api/studies/")
    body = client.get("/api/journal/?user=sysadmin&action=search").json()
    assert body["count"] >= 1 and all(e["user"] == "sysadmin" for e in body["results"])
    assert client.get("/api/journal/?date_from=notadate").status_code == 400
