"""`manage.py storagelocations list|add|set|current|purge`: storage locations from the shell."""

from django.core.management.base import BaseCommand, CommandError

from pacsone import storage
from pacsone.models import StorageLocation
from pacsone.storage_admin import LocationError, describe, do_add_location, do_change_location, do_set_current
from ...humanize import count

USER = "manage.py"  # the journal's user for changes made here


def usage_text(location: StorageLocation) -> str:
    try:
        usage = storage.usage(location)
    except OSError as error:
        return f"usage unknown ({error.strerror or error})"
    return f"{usage.percent_used:.1f}% of {usage.total_bytes} bytes in use"


class Command(BaseCommand):
    help = "Storage locations: list them, add one, change its name or purge watermarks, make one current, purge."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List the locations, their usage and watermarks.")
        add = actions.add_parser("add", help="Add a location (a folder, made if missing).")
        add.add_argument("name")
        add.add_argument("path", help="absolute path of the folder")
        add.add_argument("--high", type=int, default=None, help="purge above this percentage in use")
        add.add_argument("--low", type=int, default=None, help="... until below this percentage")
        add.add_argument("--current", action="store_true", help="store new studies here from now on")
        change = actions.add_parser("set", help="Rename a location or change its watermarks.")
        change.add_argument("name")
        change.add_argument("--rename", default=None, metavar="NEW_NAME")
        change.add_argument("--high", type=int, default=None)
        change.add_argument("--low", type=int, default=None)
        change.add_argument("--no-watermarks", action="store_true", help="never purge this location")
        current = actions.add_parser("current", help="Store new studies in this location from now on.")
        current.add_argument("name")
        purge = actions.add_parser("purge", help="Purge locations above their high watermark now.")
        purge.add_argument("name", nargs="?", help="only this location")
        purge.add_argument("--dry-run", action="store_true", help="only list what would be purged, and why")

    def handle(self, *args, **options):
        try:
            getattr(self, f"do_{options['action']}")(options)
        except LocationError as error:
            raise CommandError(str(error)) from None

    def _get(self, name: str) -> StorageLocation:
        location = StorageLocation.objects.filter(name=name).first()
        if location is None:
            raise CommandError(f"no storage location is named {name} (see `storagelocations list`)")
        return location

    def do_list(self, options):
        storage.default_location()  # the first start's location exists before anyone lists them
        for location in StorageLocation.objects.order_by("name"):
            self.stdout.write(f"{describe(location)}; {usage_text(location)}; "
                              f"{count(location.instances.count(), 'file', 'files')}")

    def do_add(self, options):
        location = do_add_location(options["name"], options["path"], options["high"], options["low"], username=USER)
        if options["current"]:
            do_set_current(location, username=USER)
        self.stdout.write(f"Added {describe(location)}")

    def do_set(self, options):
        location = self._get(options["name"])
        high, low = location.high_watermark, location.low_watermark
        if options["no_watermarks"]:
            high = low = None
        if options["high"] is not None:
            high = options["high"]
        if options["low"] is not None:
            low = options["low"]
        location = do_change_location(location, options["rename"] or location.name, high, low, username=USER)
        self.stdout.write(f"Changed: {describe(location)}")

    def do_current(self, options):
        location = self._get(options["name"])
        do_set_current(location, username=USER)
        self.stdout.write(f"New studies go to {describe(location)}")

    def do_purge(self, options):
        from routing import purge

        locations = [self._get(options["name"])] if options["name"] else \
            list(StorageLocation.objects.filter(high_watermark__isnull=False).order_by("name"))
        for location in locations:
            if options["dry_run"]:
                plan = purge.plan(location)
                self.stdout.write(f"{location.name}: {plan.summary}")
                for planned in plan.studies:
                    self.stdout.write(f"  would purge study {planned.study.study_instance_uid}: "
                                      f"{planned.frees_bytes} bytes, {planned.reason}")
                for skipped in plan.skipped:
                    self.stdout.write(f"  keeps study {skipped.study.study_instance_uid}: {skipped.reason}")
            else:
                result = purge.purge(location)
                self.stdout.write(f"{location.name}: {result.plan.summary}; {len(result.purged)} purged"
                                  + (f", {len(result.refused)} protected since the plan" if result.refused else ""))
