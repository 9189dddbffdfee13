"""Printing from the browser (Print) and the printer registry (System Administration).

Images, series or studies chosen on the study list, a study or a series page are posted to
`print_select`, which reaches each through pacsone.access (a hidden one is a journaled 404)
and keeps the choice in the session. The print page then offers printer, layout and copies,
shows each film sheet as a PNG rendered here, and "Print" queues the job. Every request
reaches the images again through pacsone.access: a study hidden since is refused.
"""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from .. import film as films
from ..access import access_instance, access_series, access_study
from ..humanize import count
from ..models import Instance, Printer, parse_display_format
from ..print_jobs import do_print
from ..printers import do_remove_printer, do_save_printer, enabled_printers, verify_printer
from .actions import back
from .forms import PrinterForm, PrintForm

SESSION_KEY = "print_selection"
MAX_CHOICES = 500  # studies, series or images posted at once

# --- The printer registry ---------------------------------------------------------------------------------


@privilege_required(Privilege.SYSTEM_ADMIN)
def printer_list(request):
    return render(request, "pacsone/printers/list.html", {"printers": Printer.objects.order_by("ae_title")})


@privilege_required(Privilege.SYSTEM_ADMIN)
def printer_edit(request, pk=None):
    printer = get_object_or_404(Printer, pk=pk) if pk else None
    form = PrinterForm(request.POST or None, instance=printer)
    if request.method == "POST" and form.is_valid():
        saved = do_save_printer(form.save(commit=False), acting_user=request.user, request=request)
        messages.success(request, f"Printer {saved.ae_title} {'changed' if printer else 'added'}.")
        return redirect("printer-list")
    return render(request, "pacsone/printers/form.html", {"form": form, "printer": printer})


@privilege_required(Privilege.SYSTEM_ADMIN)
def printer_delete(request, pk):
    printer = get_object_or_404(Printer, pk=pk)
    if request.method == "POST":
        do_remove_printer(printer, acting_user=request.user, request=request)
        messages.success(request, f"Printer {printer.ae_title} removed.")
        return redirect("printer-list")
    return render(request, "pacsone/printers/confirm_delete.html", {"printer": printer})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def printer_verify(request, pk):
    printer = get_object_or_404(Printer, pk=pk)
    ok, said = verify_printer(printer, acting_user=request.user, request=request)
    (messages.success if ok else messages.error)(request, said)
    return redirect("printer-list")


# --- Choosing what to print ------------------------------------------------------------------------------


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    """"study_uid/other_uid" values; anything else is refused as missing."""
    pairs = []
    for value in values:
        study_uid, _, other = value.partition("/")
        if not study_uid or not other or len(study_uid) > 64 or len(other) > 64:
            raise Http404("Not found.")
        pairs.append((study_uid, other))
    return pairs


@require_POST
@privilege_required(Privilege.PRINT)
def print_select(request):
    """Keep the posted studies, series and images (each reached through pacsone.access) for the
    print page."""
    studies = list(dict.fromkeys(request.POST.getlist("study")))
    series = _pairs(list(dict.fromkeys(request.POST.getlist("series"))))
    images = _pairs(list(dict.fromkeys(request.POST.getlist("image"))))
    if not (studies or series or images):
        messages.error(request, "Select one or more studies, series or images to print.")
        return back(request)
    if len(studies) + len(series) + len(images) > MAX_CHOICES:
        messages.error(request, f"Select at most {MAX_CHOICES} studies, series or images at a time.")
        return back(request)
    chosen = {"studies": studies, "series": series, "images": images}
    _selected_images(request, chosen)  # refuses (404, journaled) what the user may not see
    request.session[SESSION_KEY] = chosen
    return redirect("print")


def _selected_images(request, chosen: dict | None = None) -> list[Instance]:
    """The chosen images (by default the session's choice) in print order, every one reached
    through pacsone.access; Http404 (journaled) when one is not visible. At most
    MAX_PRINT_IMAGES + 1 (one more says "too many")."""
    chosen = chosen if chosen is not None else request.session.get(SESSION_KEY) or {}
    images = films.printable_images()  # narrowed below to what pacsone.access let through
    limit = films.MAX_PRINT_IMAGES + 1
    found: dict[int, Instance] = {}

    def add(queryset) -> None:
        found.update((image.pk, image) for image in queryset[:max(0, limit - len(found))])

    for study_uid in chosen.get("studies", []):
        add(images.filter(series__study=access_study(request, study_uid, action=Action.PRINT)))
    for study_uid, series_uid in chosen.get("series", []):
        add(images.filter(series=access_series(request, study_uid, series_uid, action=Action.PRINT)))
    for study_uid, sop_uid in chosen.get("images", []):
        add(images.filter(pk=access_instance(request, study_uid, sop_uid, action=Action.PRINT).pk))
    return list(found.values())


def _choices(request, printers) -> tuple[PrintForm, Printer | None, str, int]:
    """The print form (from the query or the post) and what it chose: printer, layout, copies."""
    data = request.POST if request.method == "POST" else (request.GET if "printer" in request.GET else None)
    form = PrintForm(data, printers=printers)
    if form.is_bound and form.is_valid():
        printer = form.cleaned_data["printer"]
        return form, printer, form.cleaned_data["layout"] or printer.display_format, (
            form.cleaned_data["copies"] or printer.copies)
    printer = printers.first()
    return form, None if form.is_bound else printer, printer.display_format if printer else "", (
        printer.copies if printer else 1)


@privilege_required(Privilege.PRINT)
def print_page(request):
    images = _selected_images(request)
    printers = enabled_printers()
    form, printer, layout, copies = _choices(request, printers)
    too_many = len(images) > films.MAX_PRINT_IMAGES
    if request.method == "POST" and printer and images and not too_many:
        job = do_print(images, printer, layout, copies, acting_user=request.user, request=request)
        messages.success(request, f"Print of {count(len(images), 'image', 'images')} on {printer.ae_title} queued.")
        return redirect("routing:job-detail", job.pk)
    sheets = films.sheets(images, parse_display_format(layout)) if printer and not too_many else []
    query = request.GET.urlencode() if "printer" in request.GET else (f"printer={printer.pk}" if printer else "")
    studies = {image.series.study_id: image.series.study for image in images}
    for study in studies.values() if sheets else ():  # the preview shows their images
        record(Action.VIEW, request=request, target="print preview", patient_id=study.patient.patient_id,
               study_uid=study.study_instance_uid,
               detail=f"{count(len(sheets), 'sheet', 'sheets')} on {printer.ae_title}")
    return render(request, "pacsone/print.html", {
        "form": form, "printer": printer, "printers": printers, "layout": layout, "copies": copies,
        "images": len(images), "studies": len(studies), "too_many": too_many, "max_images": films.MAX_PRINT_IMAGES,
        "sheets": [{"number": n, "cells": len(sheet)} for n, sheet in enumerate(sheets, start=1)], "query": query,
    })


@privilege_required(Privilege.PRINT)
def print_preview(request, sheet: int):
    """Sheet `sheet` (1-based) of the chosen images as a PNG, laid out as the printer would."""
    images = _selected_images(request)
    _form, printer, layout, _copies = _choices(request, enabled_printers())
    if printer is None or len(images) > films.MAX_PRINT_IMAGES:
        raise Http404("Choose a printer and at most the images a print may hold.")
    layout_cells = parse_display_format(layout)
    sheets = films.sheets(images, layout_cells)
    if not 1 <= sheet <= len(sheets):
        raise Http404("No such sheet.")
    png = films.preview_png(sheets[sheet - 1], layout_cells, printer.film_size_id, printer.orientation, printer.color)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response
