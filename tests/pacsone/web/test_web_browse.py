"""The study browser: study list (search, sort, pages, counts), patient, study and series pages;
privileges, visibility (404 on guessed ids), bad input, the journal."""

import datetime

import pytest

from audit.models import Entry
from pacsone.models import Series, Study
from tests.people import make_study, make_user, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def names(response) -> set[str]:
    return {s.patient.patient_name for s in response.context["page"]}


def test_the_study_list_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role,expected", [
    ("physician", {"PUBLIC^PAT", "OWN^PAT"}),
    ("power", {"PUBLIC^PAT", "OWN^PAT", "OTHER^PAT"}),
    ("sysadmin", {"PUBLIC^PAT"}),
])
def test_the_list_shows_only_visible_studies(client, world, role, expected):
    client.force_login(world.users[role])
    response = client.get("/")
    assert response.status_code == 200
    assert names(response) == expected
    assert f"{len(expected)} in all".encode() in response.content
    # The whole-archive summary bar only for View (or Monitor) holders: it counts hidden patients.
    summary = b"patients" in response.content and b"stored" in response.content
    assert summary == (role in ("power", "sysadmin"))  # sysadmin holds Monitor


@pytest.mark.parametrize("query,expected", [
    ({"patient_name": "own*"}, {"OWN^PAT"}),
    ({"patient_name": "?THER^*"}, {"OTHER^PAT"}),
    ({"patient_id": "PUB1"}, {"PUBLIC^PAT"}),
    ({"modality": "ct", "public": "true"}, {"PUBLIC^PAT"}),
    ({"referring_physician": "smith*"}, {"OWN^PAT"}),
    ({"read": "true"}, set()),
])
def test_search(client, world, query, expected):
    client.force_login(world.users["root"])
    response = client.get("/", query)
    assert names(response) == expected


def test_search_by_date_range_accession_and_source(client, world):
    client.force_login(world.users["root"])
    Study.objects.filter(pk=world.studies["own"].pk).update(
        study_date=datetime.date(2024, 3, 1), accession_number="A77", source_ae="CT1")
    assert names(client.get("/", {"date_from": "2024-02-01", "date_to": "2024-03-31"})) == {"OWN^PAT"}
    assert names(client.get("/", {"accession_number": "A7*"})) == {"OWN^PAT"}
    assert names(client.get("/", {"source_ae": "CT1"})) == {"OWN^PAT"}


def test_a_search_is_journaled_with_its_criteria(client, world):
    client.force_login(world.users["physician"])
    client.get("/", {"patient_name": "own*"})
    entry = Entry.objects.filter(action="search").first()
    assert entry.username == "jane" and "patient_name=own*" in entry.detail


def test_bad_search_input_is_reported_not_widened(client, world):
    client.force_login(world.users["root"])
    response = client.get("/", {"date_from": "last week", "sort": "password"})
    assert response.status_code == 200
    assert b"is not a date" in response.content and b"cannot sort by" in response.content


def test_sorting_by_name_both_ways(client, world):
    client.force_login(world.users["root"])
    ascending = [s.patient.patient_name for s in client.get("/", {"sort": "name"}).context["page"]]
    assert ascending == ["OTHER^PAT", "OWN^PAT", "PUBLIC^PAT"]
    descending = [s.patient.patient_name for s in client.get("/", {"sort": "-name"}).context["page"]]
    assert descending == ascending[::-1]
    page = client.get("/", {"sort": "name"}).content.decode()
    assert "sort=-name" in page  # a second click on the column reverses


def test_pages_and_counts(client):
    root = make_user("root")
    for number in range(60):
        make_study(f"1.2.3.{number}", f"P{number:03d}", study_date=datetime.date(2024, 1, 1) + datetime.timedelta(days=number))
    client.force_login(root)
    first = client.get("/")
    assert len(first.context["page"]) == 50 and b"60 in all" in first.content
    assert first.context["page"][0].patient.patient_id == "P059"  # newest study date first
    second = client.get("/", {"page": 2})
    assert len(second.context["page"]) == 10
    assert client.get("/", {"page": "nonsense"}).status_code == 200


def test_the_list_offers_export_only_with_the_privilege(client, world):
    client.force_login(world.users["physician"])
    assert b'value="export"' not in client.get("/").content
    exporter = make_user("exporter", ["export"])
    client.force_login(exporter)
    assert b'name="action" value="export"' in client.get("/").content


def test_patient_page(client, world):
    client.force_login(world.users["physician"])
    own = world.studies["own"].patient
    response = client.get(f"/patients/{own.pk}/")
    assert response.status_code == 200 and b"OWN^PAT" in response.content
    assert client.get(f"/patients/{world.studies['other'].patient.pk}/").status_code == 404
    assert client.get("/patients/999999/").status_code == 404
    assert Entry.objects.filter(action="view", patient_id="OWN1").exists()


def test_a_patient_page_lists_only_the_visible_studies(client, world):
    patient = world.studies["own"].patient
    make_study("1.2.826.1.9", patient.patient_id, referring="JONES^BOB")  # same patient, not Jane's
    client.force_login(world.users["physician"])
    response = client.get(f"/patients/{patient.pk}/")
    assert [s.study_instance_uid for s in response.context["studies"]] == ["1.2.826.1.2"]


def test_study_page_and_its_guessed_neighbours(client, world):
    client.force_login(world.users["physician"])
    own, other = world.studies["own"], world.studies["other"]
    response = client.get(f"/studies/{own.study_instance_uid}/")
    assert response.status_code == 200 and b"Series" in response.content
    assert client.get(f"/studies/{other.study_instance_uid}/").status_code == 404
    assert client.get("/studies/1.2.3.4.5.6/").status_code == 404
    entry = Entry.objects.filter(action="view", study_uid=own.study_instance_uid).first()
    assert entry and entry.target == "study"


def test_study_actions_follow_the_privileges(client, world):
    uid = world.studies["own"].study_instance_uid
    client.force_login(world.users["physician"])
    page = client.get(f"/studies/{uid}/").content.decode()
    for action in ("Download ZIP", "Export DICOMDIR", "Mark read", "Make public", "Delete", ">Edit<"):
        assert action not in page
    assert "Notes" in page
    everything = make_user("everything", ["view", "modify", "download", "export", "mark_study"])
    client.force_login(everything)
    page = client.get(f"/studies/{uid}/").content.decode()
    for action in ("Download ZIP", "Export DICOMDIR", "Mark read", "Make public", "Delete", ">Edit<"):
        assert action in page


def test_series_page(client, world):
    client.force_login(world.users["physician"])
    own, other = world.studies["own"], world.studies["other"]
    own_series = own.series.get()
    assert client.get(f"/studies/{own.study_instance_uid}/series/{own_series.series_instance_uid}/").status_code == 200
    # A series of a study Jane may not see, under her own study's UID or its own: 404.
    other_series = other.series.get()
    assert client.get(f"/studies/{own.study_instance_uid}/series/{other_series.series_instance_uid}/").status_code == 404
    assert client.get(f"/studies/{other.study_instance_uid}/series/{other_series.series_instance_uid}/").status_code == 404


def test_a_study_without_series_still_shows(client, world):
    Series.objects.filter(study=world.studies["public"]).delete()
    client.force_login(world.users["physician"])
    response = client.get(f"/studies/{world.studies['public'].study_instance_uid}/")
    assert response.status_code == 200 and b"no series" in response.content
