"""The system journal: append-only, hash-chained, verifiable; its pages, CSV and e-mail settings (the monthly mail: tests/pacsone/core/test_mail.py)."""

import datetime
import re
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.journal import Action, Outcome, record, verify_chain
from audit.models import AppendOnlyError, Entry, MailServer
from tests.people import make_user

pytestmark = pytest.mark.django_db


def some_entries(n=5):
    return [record(Action.VIEW, patient_id=f"P{i}", study_uid=f"1.2.{i}", address="10.0.0.1") for i in range(n)]


def test_entries_chain_to_each_other():
    first, second = some_entries(2)
    assert second.previous_hash == first.hash
    assert verify_chain().ok and verify_chain().checked == 2


def test_the_orm_cannot_change_or_delete_an_entry():
    entry = some_entries(1)[0]
    entry.detail = "changed"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        Entry.objects.filter(pk=entry.pk).update(detail="changed")
    with pytest.raises(AppendOnlyError):
        Entry.objects.all().delete()


def _raw(sql, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("?", "%s"), params)


def test_verifyjournal_finds_a_row_edited_by_hand(capsys):
    entries = some_entries(5)
    call_command("verifyjournal")
    assert "5 entries" in capsys.readouterr().out
    _raw("UPDATE audit_entry SET patient_id = ? WHERE id = ?", "SOMEONE", entries[2].pk)
    with pytest.raises(CommandError, match=f"entry id {entries[2].pk}"):
        call_command("verifyjournal")


def test_verifyjournal_finds_a_removed_row():
    entries = some_entries(5)
    _raw("DELETE FROM audit_entry WHERE id = ?", entries[1].pk)
    report = verify_chain()
    assert not report.ok and report.broken_at == entries[2].pk


def test_verifyjournal_finds_the_newest_row_removed():
    entries = some_entries(3)
    _raw("DELETE FROM audit_entry WHERE id = ?", entries[-1].pk)
    with pytest.raises(CommandError, match="removed"):
        call_command("verifyjournal")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    def write():
        for _ in range(10):
            record(Action.SEARCH, detail="concurrent")
        connection.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_chain()
    assert report.ok and report.checked == 40


def test_journal_page_filters_and_csv(client):
    admin = make_user("sysadmin", ["system_admin"])
    record(Action.VIEW, patient_id="PX", address="10.1.1.1", user=admin)
    record(Action.DELETE, patient_id="PY", outcome=Outcome.FAILURE)
    client.force_login(admin)
    page = client.get("/journal/?patient_id=PX")
    # Cells, not bare letters: the page's random CSRF token may contain "PY".
    assert page.status_code == 200 and b'<td class="who">PX</td>' in page.content and b'<td class="who">PY</td>' not in page.content
    bad = client.get("/journal/?date_from=31/12/2024")
    assert b"is not a date" in bad.content
    today = datetime.date.today().isoformat()
    csv_response = client.get(f"/journal/journal.csv?date_from={today}&date_to={today}")
    body = b"".join(csv_response.streaming_content).decode()
    assert csv_response["Content-Disposition"].startswith("attachment")
    assert body.splitlines()[0].startswith("id,timestamp,username")
    assert "PX" in body and "PY" in body
    # The time in the pages' one format (server time zone, seconds), not Python's repr in UTC.
    assert re.match(r"^\d+,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,", body.splitlines()[1]), body.splitlines()[1]
    assert Entry.objects.filter(action="export", target="journal CSV").exists()


def test_mail_settings_page_saves_and_journals(client):
    admin = make_user("sysadmin", ["system_admin"])
    client.force_login(admin)
    response = client.post("/journal/mail/", {"host": "smtp.example.org", "port": 587, "security": "starttls",
                                              "username": "pacs", "password": "s3cret-Pa55", "sender": "pacs@example.org",
                                              "administrators": "admin@example.org, boss@example.org",
                                              "weekly_report": "on"})
    assert response.status_code == 302
    server = MailServer.current()
    assert server.configured and server.password == "s3cret-Pa55" and server.recipients == ["admin@example.org", "boss@example.org"]
    assert (server.daily_report, server.weekly_report, server.monthly_report) == (False, True, False)
    entry = Entry.objects.get(action="configuration", target="e-mail server")
    assert "s3cret" not in entry.detail and "password=set" in entry.detail
    page = client.get("/journal/mail/")
    assert b"s3cret" not in page.content and b"a password is stored" in page.content
    # Saving again without a password keeps it; "remove" removes it.
    client.post("/journal/mail/", {"host": "smtp.example.org", "port": 587, "security": "starttls", "sender": "pacs@example.org",
                                   "administrators": "admin@example.org"})
    assert MailServer.current().password == "s3cret-Pa55"
    client.post("/journal/mail/", {"host": "smtp.example.org", "port": 587, "security": "starttls", "sender": "pacs@example.org",
                                   "administrators": "admin@example.org", "forget_password": "on"})
    assert MailServer.current().password == ""
    bad = client.post("/journal/mail/", {"host": "x", "port": "70000", "sender": "not-an-address", "security": "none",
                                         "administrators": "admin@example.org, nobody"})
    assert bad.status_code == 200 and b"errorlist" in bad.content
    assert b"nobody is not an e-mail address" in bad.content and b"65535" in bad.content


def test_activity_chart_counts_entries_and_failures_per_day(client):
    from audit.views import daily_activity

    record(Action.VIEW)
    record(Action.LOGIN_FAILED, outcome=Outcome.FAILURE)
    chart = daily_activity(Entry.objects.all())
    assert len(chart) == 30
    assert (chart[-1]["total"], chart[-1]["failed"], chart[-1]["height"]) == (2, 1, 100)
    assert sum(day["total"] for day in chart) == 2


def test_setuppacs_schedules_the_monthly_report():
    from django_q.models import Schedule

    from pacsone.schedules import ensure_schedules

    ensure_schedules()
    ensure_schedules()
    schedule = Schedule.objects.get(name="monthly journal report")
    assert schedule.schedule_type == Schedule.MONTHLY and schedule.next_run.day == 1
