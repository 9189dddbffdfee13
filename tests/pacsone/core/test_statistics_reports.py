"""The daily, weekly, monthly and on-demand statistics reports, as jobs, received by a real SMTP
server (aiosmtpd) with the clock frozen on Wednesday 18 November 2026; and what happens when
the server refuses, is down, or is not configured."""

import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Entry, MailServer
from pacsone.schedules import ENTRIES
from pacsone.stats_report import queue_scheduled_report
from routing import clock
from routing.models import Job
from routing.runner import run_due
from tests.helpers import free_port
from tests.smtp_server import configure, parts, smtp_server
from tests.stats_data import NOW, at, received

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def archive():
    received(at(2026, 11, 17, 8, 15), modality="CT", ae="CT_ROOM1", instances=3, size=1000)   # yesterday
    received(at(2026, 11, 17, 9, 30), modality="MR", ae="MR_ROOM2", instances=2, size=2000)   # yesterday
    received(at(2026, 11, 10, 14, 0), modality="US", ae="US_ROOM3", instances=4, size=500)    # last week
    received(at(2026, 10, 5, 11, 0), modality="CR", ae="CR_ROOM4", institution="CITY CLINIC", instances=6, size=100)  # last month
    received(at(2026, 11, 18, 9, 0), modality="DX", ae="DX_ROOM5", instances=1)               # today: in no report


def _csv(message) -> str:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    return attachment.get_content()


def _assert_chart_inline(message):
    found = parts(message)
    [html] = found["text/html"]
    [image] = found["image/png"]
    assert image["Content-ID"] == "<statistics-chart>" and 'src="cid:statistics-chart"' in html.get_content()
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    return html.get_content()


@pytest.mark.parametrize("kind, subject, figures, csv_rows", [
    ("daily", "PacsOne daily statistics report: 2026-11-17", "Instances received</th><td style=\"text-align:right;padding:4px 0\">5",
     ["2026-11-17,2,2,5,7000", "CT,1,3", "MR_ROOM2,1,2,4000"]),
    ("weekly", "PacsOne weekly statistics report: 2026-11-09 to 2026-11-15", "Studies received</th><td style=\"text-align:right;padding:4px 0\">1",
     ["2026-11-10,1,1,4,2000", "total,1,1,4,2000", "US_ROOM3,1,4,2000"]),
    ("monthly", "PacsOne monthly statistics report: 2026-10-01 to 2026-10-31", "CITY CLINIC",
     ["2026-10-05,1,1,6,600", "total,1,1,6,600", "CITY CLINIC,1,6,600"]),
])
def test_a_scheduled_report_arrives_with_its_figures(archive, kind, subject, figures, csv_rows):
    with smtp_server() as (mailbox, port):
        configure(port)
        assert queue_scheduled_report(kind).startswith("queued job")
    job = Job.objects.get(kind=Job.Kind.REPORT)
    assert job.state == Job.State.DONE and "250 2.0.0 Ok" in job.message, job.message
    [message] = mailbox.messages
    assert message["Subject"] == subject
    assert mailbox.envelopes[0].rcpt_tos == ["admin@example.org", "second@example.org"]
    assert figures in _assert_chart_inline(message)
    table = _csv(message).replace("\r\n", "\n")
    for row in csv_rows:
        assert row in table.splitlines(), (row, table)
    assert "DX" not in table  # today's study is in no report yet
    entry = Entry.objects.get(target="statistics report e-mail")
    assert entry.outcome == "success" and entry.username == "(scheduler)"


def test_the_schedules_exist_and_a_switched_off_report_is_not_sent(archive):
    names = {entry.name: entry for entry in ENTRIES}
    for kind, schedule_type in (("daily", "D"), ("weekly", "W"), ("monthly", "M")):
        entry = names[f"{kind} statistics report"]
        assert entry.schedule_type == schedule_type and entry.func.endswith(f"queue_{kind}_report")
        assert entry.first_run() > NOW.replace(year=2000)
    with smtp_server() as (mailbox, port):
        configure(port, daily_report=False)
        assert queue_scheduled_report("daily") == "the daily report is switched off"
    assert not mailbox.messages and not Job.objects.exists()


def test_without_an_e_mail_server_nothing_is_queued_and_an_asked_for_report_fails_in_words(client, archive):
    assert queue_scheduled_report("weekly").startswith("not queued: no e-mail server is configured")
    assert not Job.objects.exists()
    from tests.people import make_user

    client.force_login(make_user("watcher", ["monitor"]))
    page = client.get("/statistics/")
    assert b'id="mail-warning"' in page.content and b"no e-mail server is configured" in page.content
    response = client.post("/statistics/report/", {"date_from": "2026-11-01", "date_to": "2026-11-17", "by": "day"})
    job = Job.objects.get(kind=Job.Kind.REPORT)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.state == Job.State.FAILED and "no e-mail server is configured" in job.last_error
    assert job.attempts == 1  # permanent: not tried again


def test_an_on_demand_report_from_the_page_arrives(client, archive):
    from tests.people import make_user

    watcher = make_user("watcher", ["monitor"])
    client.force_login(watcher)
    with smtp_server() as (mailbox, port):
        configure(port)
        response = client.post("/statistics/report/", {"date_from": "2026-10-01", "date_to": "2026-11-17", "by": "week"})
    job = Job.objects.get(kind=Job.Kind.REPORT)
    assert response.status_code == 302 and job.state == Job.State.DONE and job.owner == watcher
    [message] = mailbox.messages
    assert message["Subject"] == "PacsOne statistics report: 2026-10-01 to 2026-11-17"
    html = _assert_chart_inline(message)
    assert "Instances received</th><td style=\"text-align:right;padding:4px 0\">15" in html
    assert "week,studies,series,instances,bytes" in _csv(message).replace("\r\n", "\n")
    assert Entry.objects.get(target="statistics report e-mail").username == "watcher"
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    bad = client.post("/statistics/report/", {"date_from": "2026-11-17", "date_to": "2026-11-01", "by": "day"}, follow=True)
    assert b"The report was not sent: The end is before the start." in bad.content


def test_a_refusing_server_fails_the_job_at_once_with_its_answer(archive):
    with smtp_server(refuse_recipients="550 5.1.1 mailbox unavailable") as (mailbox, port):
        configure(port)
        queue_scheduled_report("daily")
    job = Job.objects.get(kind=Job.Kind.REPORT)
    assert job.state == Job.State.FAILED and job.attempts == 1
    assert "550 5.1.1 mailbox unavailable" in job.last_error and not mailbox.messages
    assert Entry.objects.get(target="statistics report e-mail").outcome == "failure"
    with smtp_server(refuse_login=True) as (_, port):
        configure(port, username="pacs", password="wrong")
        queue_scheduled_report("weekly")
    job = Job.objects.filter(kind=Job.Kind.REPORT).latest("pk")
    assert job.state == Job.State.FAILED and "refused the login of pacs" in job.last_error


def test_a_server_that_is_down_is_tried_again_then_the_job_fails(archive):
    configure(free_port())
    queue_scheduled_report("monthly")
    job = Job.objects.get(kind=Job.Kind.REPORT)
    assert job.state == Job.State.QUEUED and job.next_attempt_at > NOW
    assert "attempt 1 of 3 failed: cannot connect to 127.0.0.1" in job.message
    later = NOW + datetime.timedelta(hours=1)
    run_due(now=later)
    run_due(now=later + datetime.timedelta(hours=1))
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.attempts == 3
    assert job.message.startswith("failed after 3 attempts: cannot connect to 127.0.0.1")


def test_a_server_that_comes_back_gets_the_report(archive):
    port = free_port()
    configure(port)
    queue_scheduled_report("daily")
    assert Job.objects.get().state == Job.State.QUEUED
    with smtp_server(port=port) as (mailbox, _):
        run_due(now=NOW + datetime.timedelta(hours=1))
    job = Job.objects.get()
    assert job.state == Job.State.DONE and job.attempts == 2
    assert mailbox.messages[0]["Subject"] == "PacsOne daily statistics report: 2026-11-17"


def test_statsreport_prints_the_figures_and_sends_them(archive, capsys):
    call_command("statsreport", "--daily")
    out = capsys.readouterr().out
    assert "Statistics 2026-11-17 (by day)" in out and "Instances received   5" in out and "7.0 kB" in out
    call_command("statsreport", "--from", "20261001", "--to", "20261118", "--by", "month")
    out = capsys.readouterr().out
    assert "Instances received   16" in out and "2026-10-01" in out and "2026-11-01" in out
    with pytest.raises(CommandError, match="not sent: no e-mail server is configured"):
        call_command("statsreport", "--weekly", "--send")
    with smtp_server() as (mailbox, port):
        configure(port)
        call_command("statsreport", "--monthly", "--send")
    assert "sent to admin@example.org" in capsys.readouterr().out
    assert mailbox.messages[0]["Subject"] == "PacsOne monthly statistics report: 2026-10-01 to 2026-10-31"
    with pytest.raises(CommandError, match="731"):
        call_command("statsreport", "--from", "20200101", "--to", "20261231")
    with pytest.raises(CommandError, match="not a day"):
        call_command("statsreport", "--from", "2026-13-01", "--to", "20261231")
    assert MailServer.current().configured
