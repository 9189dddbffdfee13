"""Storage pages (System Administration): the storage locations with their usage, adding one,
its name and purge watermarks, which one new studies go to; the retention rules; a location's
purge dry run and "purge now"; a study's legal hold. And Change Storage (privilege Change
Storage): moving selected studies to another location, as a job."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action

from .. import storage
from ..access import access_study, journal_denial, studies_for
from ..change_storage import do_change_storage
from ..models import RetentionRule, StorageLocation
from ..storage_admin import LocationError, do_add_location, do_change_location, do_set_current
from .actions import back
from ..humanize import count

MAX_STUDIES_PER_MOVE = 500


def _percent(text: str, label: str) -> int | None:
    """A watermark from a form field: blank is none; otherwise a whole percentage."""
    text = (text or "").strip().rstrip("%")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise LocationError(f"the {label} watermark must be a whole percentage, e.g. 90") from None


def _rows():
    storage.default_location()  # the first start's location is listed even before any image
    rows = []
    for location in StorageLocation.objects.order_by("name"):
        try:
            usage, problem = storage.usage(location), ""
        except OSError as error:
            usage, problem = None, error.strerror or str(error)
        rows.append({"location": location, "usage": usage, "problem": problem,
                     "files": location.instances.count(), "studies": location.studies.count()})
    return rows


@privilege_required(Privilege.SYSTEM_ADMIN)
def storage_list(request):
    """The locations (GET) and adding one (POST)."""
    form = {"name": "", "path": "", "high": "", "low": ""}
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        try:
            location = do_add_location(form["name"], form["path"], _percent(form["high"], "high"),
                                       _percent(form["low"], "low"), acting_user=request.user, request=request)
        except LocationError as error:
            messages.error(request, gettext("Not added: %(error)s.") % {"error": error})
        else:
            if request.POST.get("current") == "on":
                do_set_current(location, acting_user=request.user, request=request)
            messages.success(request, gettext("Storage location %(name)s added.") % {"name": location.name})
            return redirect("storage-list")
    rules = RetentionRule.objects.order_by("modality")
    return render(request, "pacsone/storage_list.html", {"rows": _rows(), "form": form, "rules": rules})


@privilege_required(Privilege.SYSTEM_ADMIN)
def storage_edit(request, pk: int):
    location = get_object_or_404(StorageLocation, pk=pk)
    if request.method == "POST":
        try:
            do_change_location(location, request.POST.get("name", ""), _percent(request.POST.get("high"), "high"),
                               _percent(request.POST.get("low"), "low"), acting_user=request.user, request=request)
        except LocationError as error:
            messages.error(request, gettext("Not changed: %(error)s.") % {"error": error})
            location.refresh_from_db()
        else:
            messages.success(request, gettext("Storage location %(name)s changed.") % {"name": location.name})
            return redirect("storage-list")
    return render(request, "pacsone/storage_edit.html", {"location": location})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def storage_set_current(request, pk: int):
    location = get_object_or_404(StorageLocation, pk=pk)
    try:
        do_set_current(location, acting_user=request.user, request=request)
    except LocationError as error:
        messages.error(request, gettext("Not changed: %(error)s.") % {"error": error})
    else:
        messages.success(request, gettext("New studies now go to %(name)s.") % {"name": location.name})
    return redirect("storage-list")


@privilege_required(Privilege.SYSTEM_ADMIN)
def storage_purge(request, pk: int):
    """GET: the dry run (what a purge would remove now, and why; what it passes over, and why).
    POST: purge now, exactly that."""
    from routing import purge

    location = get_object_or_404(StorageLocation, pk=pk)
    if request.method == "POST":
        result = purge.purge(location, acting_user=request.user, request=request)
        if result.purged or result.refused:
            messages.success(request, f"{count(len(result.purged), 'study', 'studies')} purged from {location.name}"
                             + (f"; {len(result.refused)} left, protected since the dry run" if result.refused else "")
                             + ".")
        else:
            messages.success(request, gettext("Nothing purged: %(summary)s") % {"summary": result.plan.summary})
        return redirect("storage-purge", pk=location.pk)
    try:
        plan, problem = purge.plan(location), ""
    except OSError as error:
        plan, problem = None, error.strerror or str(error)
    return render(request, "pacsone/storage_purge.html", {"location": location, "plan": plan, "problem": problem})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def retention_rule(request):
    """Set or remove one retention rule (blank modality: the minimum age of every study)."""
    from routing.retention import do_set_retention_rule

    modality = request.POST.get("modality", "")
    keep_days = None
    if not request.POST.get("remove"):
        text = request.POST.get("keep_days", "").strip()
        if not text.isdigit():
            messages.error(request, gettext("Not saved: keep days must be a whole number of days."))
            return redirect("storage-list")
        keep_days = int(text)
    try:
        do_set_retention_rule(modality, keep_days, acting_user=request.user, request=request)
    except ValueError as error:
        messages.error(request, gettext("Not saved: %(error)s.") % {"error": error})
    else:
        messages.success(request, "Retention rule saved." if keep_days is not None else "Retention rule removed.")
    return redirect("storage-list")


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def legal_hold(request, study_uid: str):
    """Put a study under legal hold (no purge removes it) or release it."""
    from routing.retention import do_set_legal_hold

    study = access_study(request, study_uid, action=Action.MODIFY)
    hold = request.POST.get("hold", "1") in ("1", "on", "yes", "true")
    do_set_legal_hold(study, hold, acting_user=request.user, request=request)
    messages.success(request, "Study put under legal hold." if hold else "Legal hold released.")
    return back(request)


@require_POST
@privilege_required(Privilege.CHANGE_STORAGE)
def change_storage(request):
    """Selected studies (POST `study`): without `target`, choose where to; with it, move them."""
    uids = set(request.POST.getlist("study"))
    studies = list(studies_for(request.user).filter(study_instance_uid__in=uids).order_by("received_at"))
    if not studies or len(studies) != len(uids):
        if uids:  # some study asked for does not exist or is hidden: refused, and journaled
            journal_denial(request, Action.CHANGE_STORAGE, "change storage",
                           f"{len(uids) - len(studies)} of {len(uids)} studies asked for do not exist or are "
                           "not visible to this user")
        messages.error(request, gettext("Choose one or more studies you may see to move."))
        return back(request)
    if len(studies) > MAX_STUDIES_PER_MOVE:
        messages.error(request, gettext("Move at most %(MAX_STUDIES_PER_MOVE)s studies at a time.") % {"MAX_STUDIES_PER_MOVE": MAX_STUDIES_PER_MOVE})
        return back(request)
    target_pk = request.POST.get("target", "")
    if not target_pk.isdigit():
        locations = StorageLocation.objects.order_by("name")
        return render(request, "pacsone/storage_change.html", {"studies": studies, "locations": locations,
                                                               "next": request.POST.get("next", "")})
    target = get_object_or_404(StorageLocation, pk=int(target_pk))
    job = do_change_storage(studies, target, acting_user=request.user, request=request)
    return redirect("routing:job-detail", job.pk)
