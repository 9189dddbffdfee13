import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from pacsone.nodes import NodeRefused, check_can_join
from pacsone.supervisor import PortInUse, Supervisor, default_children

COMPONENTS = ("web", "dicom", "hl7", "tasks")


class Command(BaseCommand):
    help = "Start the whole server (web, DICOM SCPs, HL7 listener, task workers) and restart any part that dies."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", choices=COMPONENTS,
            help="Start only these components (repeatable); default: all.",
        )
        parser.add_argument(
            "--node", metavar="NAME",
            help="Run as node NAME of an archive of several nodes sharing one database (PostgreSQL or "
                 "MariaDB), broker and storage folder (docs/deployment.md); default: PACS_NODE_NAME.",
        )

    def handle(self, *args, **options):
        components = set(options["only"] or COMPONENTS)
        node = options["node"]
        # On a database server other nodes may share it: check this one fits with them (a name of
        # its own, the same keys), whether or not --node names it. --node on SQLite is refused.
        if node is not None or connection.vendor != "sqlite":
            try:
                check_can_join(node or settings.PACS_NODE_NAME)
            except NodeRefused as error:
                raise CommandError(str(error)) from None
        if node is not None:
            # The children (and the job runners they start) name this node in their claims.
            os.environ["PACS_NODE_NAME"] = settings.PACS_NODE_NAME = node
        if "tasks" in components:
            from pacsone.schedules import ensure_schedules

            ensure_schedules()  # created or corrected at every start, whatever ran before
        try:
            children = default_children(components)
        except PortInUse as error:
            raise CommandError(str(error)) from None
        Supervisor(children, node=node or settings.PACS_NODE_NAME).run()
