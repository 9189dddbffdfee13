"""The trash (System Administration): studies deleted by people, hidden from everyone, kept
PACS_TRASH_DAYS; restore one, or empty the trash after a confirmation page. The changes are
pacsone.deletion's `do_*` functions, journaled there."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from ..access import trash_for
from ..deletion import access_trashed_study, do_empty_trash, do_restore_study, trash_expiry
from ..humanize import count, person_name
from ..stats import forget_archive_stats

PER_PAGE = 50


@privilege_required(Privilege.SYSTEM_ADMIN)
def trash_list(request):
    studies = trash_for(request.user).order_by("-trashed_at", "-pk")
    page = Paginator(studies, PER_PAGE).get_page(request.GET.get("page"))
    for study in page:
        study.expires_at = trash_expiry(study)
    record(Action.VIEW, request=request, target="trash", detail=f"{count(page.paginator.count, 'study', 'studies')} listed")
    return render(request, "pacsone/trash.html", {"page": page, "trash_days": settings.PACS_TRASH_DAYS})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def restore(request, pk):
    study = access_trashed_study(request.user, pk, request=request)
    if do_restore_study(study, acting_user=request.user, request=request):
        forget_archive_stats()
        name = person_name(study.patient.patient_name) or study.patient.patient_id
        messages.success(request, f"Restored study {study.study_description or '(no description)'} of {name}: "
                                  "everyone who may see it sees it again.")
    return redirect("trash")


@privilege_required(Privilege.SYSTEM_ADMIN)
def empty(request):
    """GET: what emptying will delete for good. POST with the confirmation's field: do it."""
    studies = trash_for(request.user)
    if request.method == "POST" and request.POST.get("confirm_empty") == "empty":
        deleted = do_empty_trash(acting_user=request.user, request=request, expired_only=False)
        forget_archive_stats()
        messages.success(request, gettext("The trash is empty: %(count)s deleted for good.") % {"count": count(deleted, 'study', 'studies')})
        return redirect("trash")
    if request.method == "POST":
        messages.error(request, gettext("Nothing was deleted: confirm on this page first."))
    return render(request, "pacsone/confirm_empty_trash.html", {
        "studies": studies.count(),
        "images": sum(studies.values_list("number_of_instances", flat=True)),
    })
