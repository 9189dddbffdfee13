"""The one e-mail module against a real SMTP server (aiosmtpd): the test e-mail, the journal
report, and every way a delivery fails, in words, as transient or permanent."""

import datetime
from email.message import EmailMessage

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Entry, MailServer
from audit.report import send_monthly_report
from pacsone.mail import MailError, deliver, send_test_message
from tests.helpers import free_port
from tests.smtp_server import configure, smtp_server

pytestmark = pytest.mark.django_db


def _message() -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "hello"
    message.set_content("body")
    return message


def test_the_test_email_arrives_and_the_servers_answer_is_reported():
    with smtp_server() as (mailbox, port):
        configure(port, username="", password="")
        sent, answer = send_test_message()
    assert sent and answer.startswith("250") and "queued as TEST1" in answer
    message = mailbox.messages[0]
    assert message["Subject"] == "PacsOne test e-mail"
    assert message["From"] == "pacs@example.org"
    assert mailbox.envelopes[0].rcpt_tos == ["admin@example.org", "second@example.org"]
    entry = Entry.objects.filter(target="test e-mail").get()
    assert entry.outcome == "success" and "250" in entry.detail


def test_the_password_is_stored_but_never_journaled_or_shown(capsys, tmp_path):
    password_file = tmp_path / "password"
    password_file.write_text("s3cret-Pa55\n")
    call_command("mailserver", "set", "--host", "smtp.example.org", "--port", "587", "--starttls", "--user", "pacs",
                 "--password-file", str(password_file), "--from", "pacs@example.org", "--admin", "a@example.org",
                 "--admin", "b@example.org", "--daily", "off")
    server = MailServer.current()
    assert (server.host, server.port, server.security, server.username, server.password) == (
        "smtp.example.org", 587, "starttls", "pacs", "s3cret-Pa55")
    assert server.recipients == ["a@example.org", "b@example.org"] and not server.daily_report and server.weekly_report
    call_command("mailserver", "show")
    shown = capsys.readouterr().out
    assert "password=set" in shown and "s3cret" not in shown
    entry = Entry.objects.get(target="e-mail server")
    assert entry.action == "configuration" and "s3cret" not in entry.detail and "host=smtp.example.org" in entry.detail
    with pytest.raises(CommandError, match="port"):
        call_command("mailserver", "set", "--port", "70000")


def test_the_mailserver_test_command_prints_the_answer_or_the_error(capsys):
    with smtp_server() as (mailbox, port):
        call_command("mailserver", "set", "--host", "127.0.0.1", "--port", str(port), "--from", "pacs@example.org",
                     "--admin", "admin@example.org")
        call_command("mailserver", "test")
    assert "250 2.0.0 Ok" in capsys.readouterr().out and len(mailbox.messages) == 1
    with pytest.raises(CommandError, match="cannot connect"):
        call_command("mailserver", "test")  # the server is gone now


def test_a_refused_recipient_is_permanent_and_try_later_is_transient():
    with smtp_server(refuse_recipients="550 5.1.1 no such user") as (_, port):
        configure(port)
        with pytest.raises(MailError) as refused:
            deliver(_message())
    assert not refused.value.transient and "550 5.1.1 no such user" in refused.value.reason
    with smtp_server(refuse_recipients="451 4.3.0 try again later") as (_, port):
        configure(port)
        with pytest.raises(MailError) as later:
            deliver(_message())
    assert later.value.transient and "451" in later.value.reason


def test_a_refused_login_is_permanent():
    with smtp_server(refuse_login=True) as (_, port):
        configure(port, username="pacs", password="wrong")
        with pytest.raises(MailError) as refused:
            deliver(_message())
    assert not refused.value.transient and "refused the login of pacs" in refused.value.reason


def test_a_server_that_is_down_is_transient_and_no_configuration_is_permanent():
    configure(free_port())
    with pytest.raises(MailError) as down:
        deliver(_message())
    assert down.value.transient and "cannot connect to 127.0.0.1" in down.value.reason
    MailServer.objects.update(host="")
    with pytest.raises(MailError) as unset:
        deliver(_message())
    assert not unset.value.transient and "no e-mail server is configured" in unset.value.reason
    sent, answer = send_test_message()
    assert not sent and Entry.objects.get(target="test e-mail").outcome == "failure"


def test_the_monthly_journal_report_goes_through_the_same_module():
    assert send_monthly_report() == "no e-mail server configured"
    next_month = (datetime.date.today().replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    with smtp_server() as (mailbox, port):
        configure(port)
        result = send_monthly_report(today=next_month)
    assert result.startswith("sent") and "250" in result
    message = mailbox.messages[0]
    assert message["Subject"].startswith("PacsOne journal")
    assert "Configuration change: 1" in message.get_body(("plain",)).get_content()  # the configure() entry
    attachment = next(message.iter_attachments())
    assert attachment.get_filename().endswith(".csv") and "id,timestamp,username" in attachment.get_content()
    configure(free_port())
    assert send_monthly_report(today=next_month).startswith("not sent: cannot connect")
