"""`manage.py mailserver set|show|test`: the one e-mail server from the shell (journaled as the
settings page is; the password is read from a file, never from the command line)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.models import MailServer
from pacsone.mail import current, described, do_set_mail_server, send_test_message


class Command(BaseCommand):
    help = "Set, show or test the e-mail server every report is sent through."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        setting = actions.add_parser("set", help="Set the SMTP server (fields not given stay as they are).")
        setting.add_argument("--host", help="SMTP server name or address; an empty value sends no e-mail.")
        setting.add_argument("--port", type=int)
        security = setting.add_mutually_exclusive_group()
        security.add_argument("--starttls", action="store_const", const="starttls", dest="security")
        security.add_argument("--tls", action="store_const", const="tls", dest="security", help="TLS from the start (SMTPS).")
        security.add_argument("--plain", action="store_const", const="none", dest="security", help="Neither (the default).")
        setting.add_argument("--user", help="Log in with this user name.")
        setting.add_argument("--password-file", type=Path, help="A file whose first line is the password.")
        setting.add_argument("--from", dest="sender", help="The sender address.")
        setting.add_argument("--admin", action="append", help="An administrator address (repeat for several).")
        for report in ("daily", "weekly", "monthly"):
            setting.add_argument(f"--{report}", choices=["on", "off"], help=f"The {report} statistics report.")
        actions.add_parser("show", help="Print the configuration (never the password).")
        actions.add_parser("test", help="Send the test e-mail to the administrators; print the server's answer.")

    def handle(self, *args, **options):
        if options["action"] == "show":
            self.stdout.write(described(current()))
        elif options["action"] == "test":
            sent, answer = send_test_message()
            if not sent:
                raise CommandError(f"not sent: {answer}")
            self.stdout.write(f"sent to {current().administrators}: {answer}")
        else:
            self._set(options)

    def _set(self, options):
        values = {field: options[option] for field, option in (
            ("host", "host"), ("port", "port"), ("security", "security"), ("username", "user"), ("sender", "sender"))
            if options[option] is not None}
        if options["admin"]:
            values["administrators"] = ", ".join(options["admin"])
        for report in ("daily", "weekly", "monthly"):
            if options[report]:
                values[f"{report}_report"] = options[report] == "on"
        if options["password_file"]:
            try:
                values["password"] = options["password_file"].read_text().splitlines()[0] if options["password_file"].stat().st_size else ""
            except OSError as error:
                raise CommandError(f"cannot read the password file: {error.strerror}") from None
        if not values:
            raise CommandError("nothing to set: give --host, --port, --from, --admin, ...")
        try:
            server = do_set_mail_server(values, keep_password=False)
        except ValidationError as error:
            raise CommandError("; ".join(f"{field}: {' '.join(problems)}" for field, problems in error.message_dict.items())) from None
        if server.host and not server.recipients:
            self.stderr.write("warning: no administrator address (--admin): no report can be sent")
        self.stdout.write(described(MailServer.current()))
