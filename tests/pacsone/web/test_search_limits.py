"""The study list and /api/studies/ (and /api/patients/) under the search limits: the ReDoS
pattern answers within a bound, an over-long pattern is refused with a clear message, a search
past the time bound says so (no 500)."""

import time

import pytest
from django.db.models.expressions import RawSQL

from audit.models import Entry
from pacsone.models import Study
from pacsone.web import studies as study_pages
from tests.pacsone.core.test_search_limits import REDOS, slow_sql
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db

NINE_WILDCARDS = "A*" * 9


@pytest.fixture
def viewer(client):
    make_study("1.2.826.9.1", "LONG1", patient_name="A" * 64, public=True)
    make_study("1.2.826.9.2", "DOE1", patient_name="DOE^JOHN", public=True)
    client.force_login(make_user("viewer", ["view"]))
    return client


def timed_get(client, url, **params):
    started = time.monotonic()
    response = client.get(url, params)
    return response, time.monotonic() - started


@pytest.mark.parametrize("url", ["/", "/api/studies/", "/api/patients/"])
def test_it_answers_the_redos_pattern_within_a_bound(viewer, url):
    response, seconds = timed_get(viewer, url, patient_name=REDOS)
    assert response.status_code == 200
    assert seconds < 2
    assert b"AAAAAAAAAAAA" not in response.content  # 64 A's do not end with B


def test_the_page_refuses_too_many_wildcards_and_lists_nothing(viewer):
    response = viewer.get("/", {"patient_name": NINE_WILDCARDS})
    assert response.status_code == 200
    assert b"at most 8 wildcards" in response.content
    assert response.context["page"].paginator.count == 0


@pytest.mark.parametrize("url", ["/api/studies/", "/api/patients/"])
def test_the_api_refuses_too_many_wildcards_with_a_400(viewer, url):
    response = viewer.get(url, {"patient_name": NINE_WILDCARDS})
    assert response.status_code == 400
    assert "at most 8 wildcards" in str(response.json()["patient_name"])


def test_the_length_bound_is_a_setting(viewer, settings):
    settings.PACS_MATCH_MAX_LENGTH = 10
    response = viewer.get("/api/studies/", {"accession_number": "*" + "1" * 10})
    assert response.status_code == 400 and "at most 10 characters" in str(response.json()["accession_number"])


@pytest.fixture
def slow_search(monkeypatch, settings):
    """Every search of the page and the API runs a statement slower than the bound."""
    settings.PACS_QUERY_TIMEOUT_MS = 200
    real = study_pages.search_studies

    def slowed(studies, params):
        found, problems = real(studies, params)
        return found.filter(pk__in=RawSQL(slow_sql(), [])), problems

    monkeypatch.setattr(study_pages, "search_studies", slowed)
    monkeypatch.setattr("pacsone.api.archive.search_studies", slowed)


def test_the_page_says_when_a_search_ran_past_the_time_bound(viewer, slow_search):
    response, seconds = timed_get(viewer, "/", patient_name="DOE*")
    assert response.status_code == 200 and seconds < 2
    assert b"the search took longer than 0.2 s; narrow it" in response.content
    assert Entry.objects.filter(action="search", outcome="failure", target="study list").exists()


def test_the_api_answers_503_when_a_search_ran_past_the_time_bound(viewer, slow_search):
    response, seconds = timed_get(viewer, "/api/studies/", patient_name="DOE*")
    assert response.status_code == 503 and seconds < 2
    assert response.json() == {"detail": "the search took longer than 0.2 s; narrow it"}
    assert Study.objects.count() == 2  # the connection still works
