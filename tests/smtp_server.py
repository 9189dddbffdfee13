"""A real SMTP server for the tests (aiosmtpd in a thread, on a free port): it keeps what it
receives, and can be told to refuse recipients (550, or 451 for "try later") or to require a
login it refuses."""

import email
import email.policy
import warnings
from contextlib import contextmanager

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.helpers import free_port


class Mailbox:
    def __init__(self, refuse_recipients: str = ""):
        self.refuse_recipients = refuse_recipients  # e.g. "550 5.1.1 no such user"
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return self.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return f"250 2.0.0 Ok: queued as TEST{len(self.messages)}"


def _refuse_every_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


class _Controller(Controller):
    def factory(self):
        # The refusing-login server needs no TLS for the test; aiosmtpd warns about it on each connection.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()


@contextmanager
def smtp_server(refuse_recipients: str = "", refuse_login: bool = False, port: int = 0):
    """Yields (mailbox, port); on a free port unless `port` is given."""
    mailbox = Mailbox(refuse_recipients)
    extra = {"auth_require_tls": False, "authenticator": _refuse_every_login, "auth_required": True} if refuse_login else {}
    controller = _Controller(mailbox, hostname="127.0.0.1", port=port or free_port(), **extra)
    controller.start()
    try:
        yield mailbox, controller.port
    finally:
        controller.stop()


def configure(port: int, host: str = "127.0.0.1", **fields):
    """The e-mail server of the tests: this SMTP server, two administrators."""
    from pacsone.mail import do_set_mail_server

    values = {"host": host, "port": port, "security": "none", "sender": "pacs@example.org",
              "administrators": "admin@example.org, second@example.org", **fields}
    return do_set_mail_server(values)


def parts(message) -> dict[str, list]:
    """A received message's parts by content type."""
    found: dict[str, list] = {}
    for part in message.walk():
        if not part.is_multipart():
            found.setdefault(part.get_content_type(), []).append(part)
    return found
