"""`manage.py hl7dest add NAME HOST PORT --events received,read,mpps`, `hl7dest list`,
`hl7dest remove NAME`: HL7 destinations for scripted set-ups (journaled as configuration changes)."""

from django.core.management.base import BaseCommand, CommandError

from hl7.destinations import EVENTS, DestinationError, do_add_destination, do_remove_destination
from hl7.models import Destination

ACTOR = "manage.py hl7dest"


class Command(BaseCommand):
    help = "Add, list or remove the HL7 destinations that receive notifications."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="add a destination")
        add.add_argument("name")
        add.add_argument("host")
        add.add_argument("port")
        add.add_argument("--events", default="received", help=f"comma-separated: {', '.join(EVENTS)}")
        add.add_argument("--application", default="", help="its MSH-5 (receiving application)")
        add.add_argument("--facility", default="", help="its MSH-6 (receiving facility)")
        actions.add_parser("list", help="list the destinations")
        remove = actions.add_parser("remove", help="remove a destination")
        remove.add_argument("name")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "add":
            try:
                destination = do_add_destination(options["name"], options["host"], options["port"], options["events"],
                                                 username=ACTOR, receiving_application=options["application"],
                                                 receiving_facility=options["facility"])
            except DestinationError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"added {destination.name} {destination.host}:{destination.port} events={destination.events}")
        elif action == "list":
            for destination in Destination.objects.all():
                state = "" if destination.enabled else " (disabled)"
                self.stdout.write(f"{destination.name}\t{destination.host}:{destination.port}\t{destination.events}{state}")
        else:
            destination = Destination.objects.filter(name=options["name"]).first()
            if destination is None:
                raise CommandError(f"no HL7 destination named {options['name']}")
            do_remove_destination(destination, username=ACTOR)
            self.stdout.write(f"removed {options['name']}")
