"""Every e-mail the server sends goes through here: the one SMTP configuration (audit.MailServer),
changed only by `do_set_mail_server`, and `deliver`, which sends a message and returns the SMTP
server's answer, or raises MailError saying in words what went wrong and whether another
attempt could succeed (`transient`: the server is down, busy or answered 4xx) or not (no
configuration, refused login, refused sender or recipient, 5xx).

The message is built with the standard library's `email.message.EmailMessage` (HTML body,
inline images by Content-ID, attachments); deliver() adds From, To, Date and Message-ID.
"""

import email.utils
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage

from django.db import transaction

from audit.journal import Action, Outcome, record
from audit.models import MailServer

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
# What the journal and `mailserver show` may tell about the configuration (never the password).
SHOWN_FIELDS = ("host", "port", "security", "username", "sender", "administrators",
                "daily_report", "weekly_report", "monthly_report")
NOT_CONFIGURED = "no e-mail server is configured (System Administration → E-mail, or manage.py mailserver set)"


class MailError(Exception):
    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def current() -> MailServer:
    return MailServer.current()


def described(server: MailServer) -> str:
    """The configuration in one line for the journal and the shell; the password only as set or not."""
    shown = " ".join(f"{field}={getattr(server, field)}" for field in SHOWN_FIELDS)
    return f"{shown} password={'set' if server.password else 'none'}"


def do_set_mail_server(values: dict, *, acting_user=None, request=None, keep_password: bool = True) -> MailServer:
    """Change the configuration and journal it in one transaction. `values` holds model fields;
    with `keep_password`, an empty or missing password leaves the stored one as it is."""
    with transaction.atomic():
        server = MailServer.objects.select_for_update().get(pk=current().pk)
        for field, value in values.items():
            if field == "password" and keep_password and not value:
                continue
            setattr(server, field, value)
        server.full_clean()
        server.save()
        record(Action.CONFIGURATION, request=request, user=acting_user, target="e-mail server",
               detail=described(server))
    return server


def _answer(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"


def _connect(server: MailServer) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if server.security == MailServer.Security.TLS:
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        smtp.ehlo_or_helo_if_needed()
        if server.security == MailServer.Security.STARTTLS:
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.username:
            smtp.login(server.username, server.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _transient_code(code: int) -> bool:
    return 400 <= code < 500


def _send(server: MailServer, message: EmailMessage, recipients: list[str]) -> str:
    smtp = _connect(server)
    try:
        code, text = smtp.mail(server.sender)
        if code != 250:
            raise MailError(f"the SMTP server refused the sender {server.sender}: {_answer(code, text)}", _transient_code(code))
        refused = []
        for address in recipients:
            code, text = smtp.rcpt(address)
            if code not in (250, 251):
                refused.append((address, code, text))
        if len(refused) == len(recipients):
            transient = all(_transient_code(code) for _, code, _ in refused)
            raise MailError("the SMTP server refused every recipient: " + "; ".join(
                f"{address}: {_answer(code, text)}" for address, code, text in refused), transient)
        # CRLF line ends, as SMTP wants them (smtplib leaves bytes as they are).
        code, text = smtp.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        if code != 250:
            raise MailError(f"the SMTP server refused the message: {_answer(code, text)}", _transient_code(code))
        answer = _answer(code, text)
        if refused:
            answer += " (refused: " + ", ".join(address for address, _, _ in refused) + ")"
        return answer
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def deliver(message: EmailMessage, recipients: list[str] | None = None, server: MailServer | None = None) -> str:
    """Send `message` to `recipients` (default: the administrators); the SMTP server's answer
    to the message, e.g. `250 OK queued as 1234`. Raises MailError."""
    server = server or current()
    recipients = recipients if recipients is not None else server.recipients
    if not server.host:
        raise MailError(NOT_CONFIGURED, transient=False)
    if not recipients:
        raise MailError("no administrator address is configured to send the e-mail to", transient=False)
    for header in ("From", "To", "Date", "Message-ID"):
        del message[header]
    message["From"] = server.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=server.sender.rpartition("@")[2] or None)
    where = f"{server.host}:{server.port}"
    try:
        answer = _send(server, message, recipients)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise MailError(f"{where} refused the login of {server.username}: {_answer(error.smtp_code, error.smtp_error)}",
                        transient=False) from error
    except smtplib.SMTPNotSupportedError as error:
        raise MailError(f"{where} does not offer what the settings ask for: {error}", transient=False) from error
    except ssl.SSLError as error:
        raise MailError(f"the TLS handshake with {where} failed: {error.reason or error}", transient=False) from error
    except smtplib.SMTPResponseException as error:
        raise MailError(f"{where} answered {_answer(error.smtp_code, error.smtp_error)}",
                        transient=_transient_code(error.smtp_code)) from error
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPException) as error:
        raise MailError(f"{where} closed the connection: {error}", transient=True) from error
    except socket.gaierror as error:
        raise MailError(f"the SMTP server name {server.host} is not known ({error.strerror})", transient=True) from error
    except (TimeoutError, socket.timeout) as error:
        raise MailError(f"{where} did not answer within {SMTP_TIMEOUT_SECONDS} seconds", transient=True) from error
    except OSError as error:
        raise MailError(f"cannot connect to {where}: {error.strerror or error}", transient=True) from error
    log.info("mail sent subject=%r to=%s answer=%r", message["Subject"], message["To"], answer)
    return answer


def send_test_message(*, acting_user=None, request=None) -> tuple[bool, str]:
    """The settings page's and `mailserver test`'s test e-mail to the administrators:
    (sent, the SMTP server's answer or the error in words); journaled either way."""
    server = current()
    message = EmailMessage()
    message["Subject"] = "PacsOne test e-mail"
    message.set_content(f"This test e-mail was sent by PacsOne through {server.host}:{server.port} "
                        f"({server.get_security_display()}). The e-mail settings work.\n")
    try:
        answer, sent = deliver(message, server=server), True
    except MailError as error:
        answer, sent = error.reason, False
    record(Action.CONFIGURATION, request=request, user=acting_user, target="test e-mail",
           outcome=Outcome.SUCCESS if sent else Outcome.FAILURE,
           detail=f"to={server.administrators} answer={answer}"[:1000])
    return sent, answer
