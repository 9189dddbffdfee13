"""The DICOM printer registry (System Administration, `manage.py printers`): each change with its
journal entry in the same transaction (DESIGN.md invariant 4)."""

from django.db import transaction

from audit.journal import Action, Outcome, record

from .dicom import printing
from .models import Printer


def describe(printer: Printer) -> str:
    """The printer's settings in one line, for the journal and `printers list`."""
    return (f"{printer} {printer.kind()} {printer.display_format} {printer.film_size_id} {printer.orientation} "
            f"magnification={printer.magnification_type or 'default'} medium={printer.medium_type or 'default'} "
            f"destination={printer.film_destination or 'default'} copies={printer.copies} "
            f"{'enabled' if printer.enabled else 'disabled'}")


def do_save_printer(printer: Printer, *, acting_user=None, username: str = "", request=None) -> Printer:
    """Add or change a printer (validated by the caller: its form or full_clean)."""
    verb = "changed" if printer.pk else "added"
    with transaction.atomic():
        printer.save()
        record(Action.CONFIGURATION, request=request, user=acting_user, username=username,
               target=f"printer {printer.ae_title}", detail=f"{verb}: {describe(printer)}")
    return printer


def do_remove_printer(printer: Printer, *, acting_user=None, username: str = "", request=None) -> None:
    with transaction.atomic():
        printer.delete()
        record(Action.CONFIGURATION, request=request, user=acting_user, username=username,
               target=f"printer {printer.ae_title}", detail=f"removed: {describe(printer)}")


def verify_printer(printer: Printer, *, acting_user=None, username: str = "", request=None) -> tuple[bool, str]:
    """C-ECHO and the printer's status: (reachable and offering its service, what it said). Journaled."""
    try:
        said, ok = printing.verify(printer), True
    except printing.PrintError as error:
        said, ok = str(error), False
    record(Action.ASSOCIATION, request=request, user=acting_user, username=username,
           target=f"printer {printer.ae_title}",
           ae_title=printer.ae_title, outcome=Outcome.SUCCESS if ok else Outcome.FAILURE, detail=f"verify: {said}")
    return ok, said


def enabled_printers():
    return Printer.objects.filter(enabled=True).order_by("ae_title")
