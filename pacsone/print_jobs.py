"""A person prints images to a DICOM printer (Print): queued as a job of the job layer, with
one journal entry "print" per study when queued and one per study with the outcome.

The job prints the sheets (pacsone.film) over one association (pacsone.dicom.printing). A
printer that is down is a transient failure (retried with back-off); one that refuses is a
permanent one, with the printer's status in words. A retry starts at the first sheet the
printer did not accept, so sheets already on film are not printed twice.
"""

from django.db import transaction

from audit.journal import Action, Outcome, record

from . import film as films
from .actions import require_visible
from .dicom import printing
from .humanize import count
from .models import Instance, Printer, Study, parse_display_format
from .rendering import RenderError


def do_print(instances: list[Instance], printer: Printer, display_format: str, copies: int, *, acting_user,
             request=None):
    """Queue the print of `instances` (in this order) on `printer`; the studies they belong to
    must all be visible to the actor."""
    from routing.jobs import start_job
    from routing.models import Job

    study_pks = sorted({instance.series.study_id for instance in instances})
    studies = list(Study.objects.filter(pk__in=study_pks).select_related("patient"))
    require_visible(acting_user, studies, Action.PRINT, request=request)
    sheets = len(films.sheets(instances, parse_display_format(display_format)))
    what = f"{count(len(instances), 'image', 'images')} on {count(sheets, 'sheet', 'sheets')}"
    with transaction.atomic():
        job = start_job(Job.Kind.PRINT, f"Print of {what} on {printer.ae_title}", acting_user,
                        "pacsone.print_jobs.print_job", printer.pk, display_format, copies,
                        [instance.pk for instance in instances], acting_user.get_username(), studies=studies)
        for study in studies:
            in_study = sum(1 for instance in instances if instance.series.study_id == study.pk)
            record(Action.PRINT, request=request, user=acting_user,
                   target=f"job {job.pk} to printer {printer.ae_title}",
                   patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
                   detail=f"{count(in_study, 'image', 'images')}, layout {display_format}, "
                          f"{count(copies, 'copy', 'copies')}, {printer.kind()}")
    return job


def print_job(progress, printer_pk: int, display_format: str, copies: int, instance_pks: list[int],
              username: str) -> str:
    from routing.jobs import PermanentError, TransientError

    printer = Printer.objects.filter(pk=printer_pk).first()
    if printer is None or not printer.enabled:
        raise PermanentError("the printer was removed or disabled since the print was asked for")
    by_pk = Instance.objects.select_related("storage_location", "series__study__patient").in_bulk(instance_pks)
    instances = [by_pk[pk] for pk in instance_pks if pk in by_pk]
    if len(instances) < len(instance_pks):
        raise PermanentError(f"{len(instance_pks) - len(instances)} of the images were deleted since the print "
                             "was asked for")
    sheets = films.sheets(instances, parse_display_format(display_format))
    already = min(progress.job.done, len(sheets))  # accepted by the printer in an earlier attempt
    progress.start(len(sheets), done=already)

    def rendered():
        for sheet in sheets[already:]:
            try:
                yield [films.print_image(instance, printer.color) for instance in sheet]
            except RenderError as error:
                raise PermanentError(f"an image cannot be printed: {error}") from None

    def printed(_number: int) -> None:
        progress.advance()
        progress.flush()  # a retry must know which sheets are on film

    film = printing.FilmSettings.of(printer, display_format, copies)
    try:
        report = printing.print_films(printer, film, rendered(), printed)
    except printing.PrinterUnreachable as error:
        _journal(instances, username, printer, Outcome.FAILURE, f"{error} (will retry)")
        raise TransientError(str(error)) from None
    except (printing.PrintRefused, PermanentError) as error:
        _journal(instances, username, printer, Outcome.FAILURE, str(error))
        raise PermanentError(str(error)) from None
    summary = (f"{count(len(instances), 'image', 'images')} printed on {count(len(sheets), 'sheet', 'sheets')} "
               f"({display_format}, {count(copies, 'copy', 'copies')}) by {printer.ae_title}")
    if report.warnings:
        summary += "; printer warnings: " + "; ".join(report.warnings)
    _journal(instances, username, printer, Outcome.SUCCESS, summary)
    return summary


def _journal(instances: list[Instance], username: str, printer: Printer, outcome: str, detail: str) -> None:
    studies = {instance.series.study.pk: instance.series.study for instance in instances}
    for study in studies.values():
        record(Action.PRINT, username=username, ae_title=printer.ae_title, target=f"printer {printer.ae_title}",
               patient_id=study.patient.patient_id, study_uid=study.study_instance_uid, outcome=outcome,
               detail=detail)
