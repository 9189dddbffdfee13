"""Every 403 is journaled once (outcome denied) and logged without a traceback; reading the
journal is itself journaled."""

import logging

import pytest

from audit.models import Entry
from tests.people import make_user

pytestmark = pytest.mark.django_db


def test_a_page_403_is_journaled_once_without_a_traceback(client, caplog):
    client.force_login(make_user("nobody"))
    with caplog.at_level(logging.WARNING):
        response = client.get("/journal/")
    assert response.status_code == 403
    entry = Entry.objects.exclude(action="login").get()
    assert (entry.username, entry.outcome, entry.target) == ("nobody", "denied", "/journal/")
    assert "System Administration" in entry.detail
    assert not [record for record in caplog.records if record.exc_info]


def test_an_api_403_is_journaled_once(client):
    client.force_login(make_user("nobody"))
    assert client.get("/api/users/").status_code == 403
    entry = Entry.objects.exclude(action="login").get()
    assert (entry.outcome, entry.target) == ("denied", "/api/users/") and "root" in entry.detail


def test_an_anonymous_api_call_is_journaled(client):
    assert client.get("/api/studies/").status_code == 403
    assert Entry.objects.get().outcome == "denied"


def test_reading_the_journal_is_journaled(client):
    client.force_login(make_user("auditor", ["system_admin"]))
    client.get("/journal/", {"user": "jane"})
    client.get("/api/journal/")
    entries = list(Entry.objects.exclude(action="login").order_by("id").values_list("action", "target", "detail"))
    assert entries == [("view", "journal", "user=jane"), ("view", "api journal list", "")]
