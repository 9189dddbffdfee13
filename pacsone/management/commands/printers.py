"""`manage.py printers list|add|remove|verify`: the DICOM printer registry from the shell."""

from django.core.management.base import BaseCommand, CommandError

from pacsone.models import Printer
from pacsone.printers import describe, do_remove_printer, do_save_printer, verify_printer
from pacsone.web.forms import PrinterForm

# option -> model field, for `add` (each defaults to the existing printer's value, else the model's)
SETTINGS = ("description", "film_size_id", "orientation", "display_format", "magnification_type", "medium_type",
            "film_destination", "copies")


class Command(BaseCommand):
    help = "Manage the DICOM printers: list, add (or update), remove, verify."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List the registered printers.")
        add = actions.add_parser("add", help="Register a printer, or update the one with this AE title.")
        add.add_argument("ae_title")
        add.add_argument("host")
        add.add_argument("port", type=int)
        add.add_argument("--description")
        add.add_argument("--film-size", dest="film_size_id", choices=Printer.FILM_SIZES)
        add.add_argument("--orientation", choices=Printer.Orientation.values)
        add.add_argument("--layout", dest="display_format", help="STANDARD\\columns,rows, e.g. 'STANDARD\\2,2'")
        add.add_argument("--magnification", dest="magnification_type", choices=Printer.MAGNIFICATIONS + [""])
        add.add_argument("--medium", dest="medium_type", choices=Printer.MEDIA + [""])
        add.add_argument("--destination", dest="film_destination", choices=Printer.DESTINATIONS + [""])
        add.add_argument("--copies", type=int)
        colour = add.add_mutually_exclusive_group()
        colour.add_argument("--color", dest="color", action="store_true", default=None, help="a colour printer")
        colour.add_argument("--grayscale", dest="color", action="store_false", help="a grayscale printer")
        enabled = add.add_mutually_exclusive_group()
        enabled.add_argument("--enabled", dest="enabled", action="store_true", default=None)
        enabled.add_argument("--disabled", dest="enabled", action="store_false")
        for name in ("remove", "verify"):
            one = actions.add_parser(name, help=f"{name.capitalize()} a printer.")
            one.add_argument("ae_title")

    def handle(self, *args, **options):
        getattr(self, f"do_{options['action']}")(options)

    def _get(self, ae_title: str) -> Printer:
        printer = Printer.objects.filter(ae_title=ae_title.strip()).first()
        if printer is None:
            raise CommandError(f"{ae_title} is not a registered printer (see `printers list`)")
        return printer

    def do_list(self, options):
        for printer in Printer.objects.order_by("ae_title"):
            line = describe(printer)
            self.stdout.write(f"{line}  {printer.description}" if printer.description else line)

    def do_add(self, options):
        existing = Printer.objects.filter(ae_title=options["ae_title"].strip()).first()
        data = {"ae_title": options["ae_title"], "host": options["host"], "port": options["port"]}
        for field in SETTINGS + ("color", "enabled"):
            chosen = options[field]
            default = getattr(existing, field) if existing else Printer._meta.get_field(field).default
            data[field] = default if chosen is None else chosen
        if not data["color"]:
            del data["color"]  # a form's unticked box is an absent one
        if not data["enabled"]:
            del data["enabled"]
        form = PrinterForm(data, instance=existing)
        if not form.is_valid():
            raise CommandError("; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
        printer = do_save_printer(form.save(commit=False), username="(shell)")
        self.stdout.write(f"{'updated' if existing else 'added'} {describe(printer)}")

    def do_remove(self, options):
        printer = self._get(options["ae_title"])
        do_remove_printer(printer, username="(shell)")
        self.stdout.write(f"removed {describe(printer)}")

    def do_verify(self, options):
        ok, said = verify_printer(self._get(options["ae_title"]), username="(shell)")
        if not ok:
            raise CommandError(said)
        self.stdout.write(said)
