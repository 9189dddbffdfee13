"""The statistics page, its CSV and /api/statistics/ (Monitor), and the e-mail settings
(System Administration): what they show, how a bad period is answered, and who is refused."""

import csv
import io

import pytest

from audit.models import Entry
from tests.people import make_user
from tests.smtp_server import configure, smtp_server
from tests.stats_data import at, received

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive():
    received(at(2026, 11, 17, 8, 15), modality="CT", ae="CT_ROOM1", referring="SMITH^JANE", instances=3, size=1000)
    received(at(2026, 11, 20, 9, 30), modality="MR", ae="MR_ROOM2", referring="=HYPERLINK(1)", instances=2, size=2000)


@pytest.fixture
def watcher(client):
    user = make_user("watcher", ["monitor"])
    client.force_login(user)
    return user


RANGE = {"date_from": "2026-11-15", "date_to": "2026-11-21", "by": "day"}


def test_the_page_shows_the_periods_figures_in_charts_and_tables(client, watcher, archive):
    page = client.get("/statistics/", RANGE)
    html = page.content.decode()
    assert page.status_code == 200
    assert "2026-11-15 to 2026-11-21" in html and "Instances received" in html
    assert 'id="chart-timeline"' in html and 'id="chart-modality"' in html and "vendor/chartjs/chart.umd.min.js" in html
    assert "SMITH, Jane" in html and "MR_ROOM2" in html and "7.0 kB" in html
    assert 'id="statistics-data"' in html and '"instances": [0, 0, 3, 0, 0, 2, 0]' in html
    assert "statistics.csv?date_from=2026-11-15" in html
    default = client.get("/statistics/")
    assert default.status_code == 200 and "Last 30 days" in default.content.decode()


def test_a_bad_range_is_shown_next_to_its_fields(client, watcher):
    page = client.get("/statistics/", {"date_from": "2026-11-21", "date_to": "2026-11-15", "by": "day"})
    assert page.status_code == 400 and b"The end is before the start." in page.content
    page = client.get("/statistics/", {"date_from": "not a day", "date_to": "", "by": "day"})
    html = page.content.decode()
    assert page.status_code == 400 and "Enter a valid date." in html and "Give the last day of the range" in html
    too_long = client.get("/statistics/", {"date_from": "2020-01-01", "date_to": "2026-01-01", "by": "day"})
    assert too_long.status_code == 400 and b"at most 731 days" in too_long.content


def test_the_csv_export_has_the_same_figures(client, watcher, archive):
    response = client.get("/statistics/statistics.csv", RANGE)
    assert response["Content-Disposition"] == 'attachment; filename="statistics-2026-11-15-2026-11-21.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["2026-11-17", "1", "1", "3", "3000"] in rows and ["total", "2", "2", "5", "7000"] in rows
    assert ["CT", "1", "3"] in rows and ["CT_ROOM1", "1", "3", "3000"] in rows
    assert ["'=HYPERLINK(1)", "1", "2", "4000"] in rows  # never a formula in a spreadsheet
    assert Entry.objects.filter(action="export", target="statistics CSV", username="watcher").exists()
    bad = client.get("/statistics/statistics.csv", {"date_from": "2026-11-21", "date_to": "2026-11-15"})
    assert bad.status_code == 400 and "to: The end is before the start." in bad.content.decode()


def test_the_api_keeps_the_archive_figures_and_adds_the_periods(client, watcher, archive):
    body = client.get("/api/statistics/").json()
    assert {key: body[key] for key in ("patients", "studies", "series", "instances", "bytes")} == {
        "patients": 2, "studies": 2, "series": 2, "instances": 5, "bytes": 7000}
    assert body["statistics"]["period"]["by"] == "day" and len(body["statistics"]["timeline"]) == 30
    week = client.get("/api/statistics/", {"from": "20261115", "to": "20261121", "by": "week"}).json()["statistics"]
    assert [(row["period"], row["instances"]) for row in week["timeline"]] == [("2026-11-09", 0), ("2026-11-16", 5)]
    assert week["by_source_ae"][0] == {"label": "CT_ROOM1", "studies": 1, "instances": 3, "bytes": 3000}
    bad = client.get("/api/statistics/", {"from": "2026-11-21", "to": "2026-11-15", "by": "hour"})
    assert bad.status_code == 400 and set(bad.json()) == {"by"}  # `by` first; the range is checked once `by` is good
    bad = client.get("/api/statistics/", {"from": "2026-11-21", "to": "2026-11-15"})
    assert bad.status_code == 400 and bad.json() == {"to": "The end is before the start."}


@pytest.mark.parametrize("method, path", [
    ("get", "/statistics/"), ("get", "/statistics/statistics.csv"), ("post", "/statistics/report/"),
    ("get", "/api/statistics/"), ("get", "/journal/mail/"), ("post", "/journal/mail/test/")])
def test_without_the_privilege_the_answer_is_403_and_journaled(client, method, path):
    # A system administrator without Monitor may not see statistics; a Monitor holder without
    # System Administration may not see or test the e-mail settings.
    privileges = ["system_admin"] if "statistics" in path else ["monitor"]
    client.force_login(make_user("limited", privileges))
    response = getattr(client, method)(path)
    assert response.status_code == 403
    entry = Entry.objects.exclude(action="login").get()
    assert (entry.username, entry.outcome, entry.target) == ("limited", "denied", path)


def test_the_mail_settings_page_sends_the_test_email_and_shows_the_answer(client):
    client.force_login(make_user("sysadmin", ["system_admin"]))
    page = client.get("/journal/mail/")
    assert b"Save an SMTP server and at least one administrator address first." in page.content
    with smtp_server() as (mailbox, port):
        configure(port)
        page = client.post("/journal/mail/test/", follow=True)
    assert b"Test e-mail sent to admin@example.org, second@example.org. The server answered: 250 2.0.0 Ok" in page.content
    assert mailbox.messages[0]["Subject"] == "PacsOne test e-mail"
    page = client.post("/journal/mail/test/", follow=True)  # the server is gone
    assert b"The test e-mail was not sent: cannot connect to 127.0.0.1" in page.content
    assert list(Entry.objects.filter(target="test e-mail").order_by("id").values_list("outcome", "username")) == [
        ("success", "sysadmin"), ("failure", "sysadmin")]
