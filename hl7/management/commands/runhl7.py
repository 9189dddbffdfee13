from django.conf import settings
from django.core.management.base import BaseCommand

from hl7.listener import serve_until_signalled


class Command(BaseCommand):
    help = "Run the HL7 MLLP listener (runpacs starts it; alone, for testing)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.PACS_HL7_PORT)
        parser.add_argument("--listen-fd", type=int, default=None,
                            help="serve this inherited listening socket instead of binding the port")

    def handle(self, *args, **options):
        serve_until_signalled(options["port"], listen_fd=options["listen_fd"])
