"""REST: PATCH of a patient's or a study's flags reaches only what the caller may see; a
patient's flag needs View (it changes all the patient's studies)."""

import pytest

from audit.models import Entry
from pacsone.models import Study
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared():
    """Jane's study and a stranger's, of one patient."""
    mine = make_study("1.2.826.9.1", "SHARED", referring="SMITH^JANE", patient_name="SHARED^PAT")
    theirs = make_study("1.2.826.9.2", "SHARED", referring="JONES^BOB", patient_name="SHARED^PAT")
    return mine, theirs


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def test_a_modify_user_without_view_cannot_publish_a_patient(client, shared):
    mine, theirs = shared
    client.force_login(make_user("jane", ["modify"], first_name="Jane", last_name="Smith"))
    response = patch(client, f"/api/patients/{mine.patient.pk}/", {"public": True})
    assert response.status_code == 403 and "View" in response.json()["detail"]
    assert not Study.objects.filter(public=True).exists()
    assert Entry.objects.filter(outcome="denied").count() == 1


def test_a_modify_user_cannot_publish_what_she_cannot_see(client, shared):
    mine, theirs = shared
    client.force_login(make_user("mo", ["modify"]))
    assert patch(client, f"/api/patients/{mine.patient.pk}/", {"public": True}).status_code == 404
    assert patch(client, f"/api/studies/{theirs.study_instance_uid}/", {"public": True}).status_code == 404
    assert not Study.objects.filter(public=True).exists()
    assert Entry.objects.filter(outcome="denied", username="mo").count() == 2


def test_a_modify_user_publishes_the_study_she_sees(client, shared):
    mine, theirs = shared
    client.force_login(make_user("jane", ["modify"], first_name="Jane", last_name="Smith"))
    assert patch(client, f"/api/studies/{mine.study_instance_uid}/", {"public": True}).status_code == 200
    assert list(Study.objects.filter(public=True)) == [mine]
    assert Entry.objects.get(action="modify", outcome="success").study_uid == mine.study_instance_uid


def test_view_and_modify_publish_the_patient_and_all_its_studies(client, shared):
    mine, theirs = shared
    client.force_login(make_user("boss", ["view", "modify"]))
    assert patch(client, f"/api/patients/{mine.patient.pk}/", {"public": True}).status_code == 200
    assert Study.objects.filter(public=True).count() == 2


def test_a_patient_is_seen_only_through_a_study_the_user_may_see(client, shared):
    mine, theirs = shared
    Study.objects.filter(pk=mine.pk).update(referring_physician_name="")
    mine.patient.public = True  # a stale flag alone shows nothing
    mine.patient.save()
    client.force_login(make_user("jane", first_name="Jane", last_name="Smith"))
    assert client.get("/api/patients/").json()["results"] == []
    assert client.get(f"/api/patients/{mine.patient.pk}/").status_code == 404
