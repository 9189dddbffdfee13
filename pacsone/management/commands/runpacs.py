from django.core.management.base import BaseCommand

from pacsone.supervisor import Supervisor, default_children

COMPONENTS = ("web", "dicom", "tasks")


class Command(BaseCommand):
    help = "Start the whole server (web, DICOM SCPs, task workers) and restart any part that dies."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", choices=COMPONENTS,
            help="Start only these components (repeatable); default: all.",
        )

    def handle(self, *args, **options):
        components = set(options["only"] or COMPONENTS)
        Supervisor(default_children(components)).run()
