from django.core.management.base import BaseCommand, CommandError

from pacsone.supervisor import PortInUse, Supervisor, default_children

COMPONENTS = ("web", "dicom", "hl7", "tasks")


class Command(BaseCommand):
    help = "Start the whole server (web, DICOM SCPs, HL7 listener, task workers) and restart any part that dies."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", choices=COMPONENTS,
            help="Start only these components (repeatable); default: all.",
        )

    def handle(self, *args, **options):
        components = set(options["only"] or COMPONENTS)
        if "tasks" in components:
            from pacsone.schedules import ensure_schedules

            ensure_schedules()  # created or corrected at every start, whatever ran before
        try:
            children = default_children(components)
        except PortInUse as error:
            raise CommandError(str(error)) from None
        Supervisor(children).run()
