from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pacsone.dicom.scp import serve_until_signalled
from pacsone.supervisor import PortInUse


class Command(BaseCommand):
    help = "Run one DICOM SCP worker process (runpacs starts several per port)."

    def add_arguments(self, parser):
        parser.add_argument("--ae-title", default=settings.PACS_AE_TITLE)
        parser.add_argument("--port", type=int, default=settings.PACS_DICOM_PORT)
        parser.add_argument(
            "--listen-fd", type=int, default=None,
            help="Accept from this inherited listening socket (runpacs passes it) instead of binding.",
        )

    def handle(self, *args, **options):
        try:
            serve_until_signalled(options["ae_title"], options["port"], options["listen_fd"])
        except PortInUse as error:
            raise CommandError(str(error)) from None
