"""Pages of the DICOM network services: the remote AE registry (System Administration) and
searching / retrieving from remote AEs (Query, Move)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, has_privilege, privilege_required
from audit.journal import Action, Outcome, record

from .. import schedules
from ..humanize import count
from ..access import remote_answers_for
from ..models import RemoteAE, RemoteSync
from ..dicom import remote as remotes
from ..dicom import scu
from .forms import RemoteAEForm, RemoteSearchForm, RemoteSyncForm

# --- Remote AE registry -----------------------------------------------------------------------------


@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_list(request):
    aes = RemoteAE.objects.order_by("ae_title").select_related("sync", "user", "group")
    return render(request, "pacsone/aes/list.html", {"aes": aes})


@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_edit(request, pk=None):
    ae = get_object_or_404(RemoteAE, pk=pk) if pk else None
    form = RemoteAEForm(request.POST or None, instance=ae)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        verb = "changed" if ae else "added"
        record(Action.CONFIGURATION, request=request, target=f"remote AE {saved.ae_title}",
               detail=f"{verb}: {saved} store={saved.may_store} query={saved.may_query} "
                      f"move_destination={saved.is_move_destination} queryable={saved.is_queryable} "
                      f"storage_commitment={saved.requests_storage_commitment} "
                      f"calls_from={saved.networks or saved.host} sees={saved.sees()}")
        messages.success(request, gettext("Remote AE %(ae_title)s %(verb)s.") % {"ae_title": saved.ae_title, "verb": verb})
        return redirect("dicom:ae-list")
    return render(request, "pacsone/aes/form.html", {"form": form, "ae": ae})


@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_delete(request, pk):
    ae = get_object_or_404(RemoteAE, pk=pk)
    if request.method == "POST":
        ae.delete()
        record(Action.CONFIGURATION, request=request, target=f"remote AE {ae.ae_title}", detail=f"deleted: {ae}")
        messages.success(request, gettext("Remote AE %(ae_title)s deleted.") % {"ae_title": ae.ae_title})
        return redirect("dicom:ae-list")
    return render(request, "pacsone/aes/confirm_delete.html", {"ae": ae})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_echo(request, pk):
    ae = get_object_or_404(RemoteAE, pk=pk)
    try:
        code = scu.echo(ae)
    except scu.ScuError as error:
        messages.error(request, gettext("C-ECHO to %(ae_title)s failed: %(error)s") % {"ae_title": ae.ae_title, "error": error})
    else:
        if code == 0:
            messages.success(request, gettext("%(ae_title)s answered C-ECHO: success.") % {"ae_title": ae.ae_title})
        else:
            messages.error(request, f"{ae.ae_title} answered C-ECHO with status 0x{code:04X}.")
    return redirect("dicom:ae-list")


@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_sync(request, pk):
    ae = get_object_or_404(RemoteAE, pk=pk)
    sync = RemoteSync.objects.filter(remote=ae).first() or RemoteSync(remote=ae)
    form = RemoteSyncForm(request.POST or None, instance=sync)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        schedules.ensure_schedules()  # the hourly sync schedule, should it be missing
        record(Action.CONFIGURATION, request=request, target=f"sync of {ae.ae_title}",
               detail=f"enabled={saved.enabled} hours={saved.hours or '-'} days={saved.days or 'all'}")
        messages.success(request, gettext("Synchronization with %(ae_title)s saved.") % {"ae_title": ae.ae_title})
        return redirect("dicom:ae-list")
    return render(request, "pacsone/aes/sync.html", {"form": form, "ae": ae, "sync": sync})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def ae_sync_now(request, pk):
    ae = get_object_or_404(RemoteAE, pk=pk, is_queryable=True)
    job = remotes.start_sync(ae, request.user)
    messages.success(request, gettext("Synchronization with %(ae_title)s started.") % {"ae_title": ae.ae_title})
    return redirect("routing:job-detail", job.pk)


RESULT_KEYWORDS = ("StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime",
                   "AccessionNumber", "StudyID", "StudyDescription", "ModalitiesInStudy",
                   "NumberOfStudyRelatedInstances")

# --- Search and retrieve ---------------------------------------------------------------------------------


@privilege_required(Privilege.QUERY)
def remote_search(request):
    form = RemoteSearchForm(request.GET if "remote" in request.GET else None)
    results, error = None, ""
    if form.is_bound and form.is_valid():
        remote = form.cleaned_data["remote"]
        try:
            results = remote_answers_for(request, remotes.search(remote, form.cleaned_data, request=request))
        except scu.ScuError as problem:
            error = str(problem)
            record(Action.QUERY, request=request, ae_title=remote.ae_title, target=f"remote AE {remote.ae_title}",
                   outcome=Outcome.FAILURE, detail=error)
    return render(request, "pacsone/dicom/remote_search.html", {
        "form": form, "results": None if results is None else [_row(answer) for answer in results], "error": error,
        "can_move": has_privilege(request.user, Privilege.MOVE),
        "retrieves": remotes.recent_retrieves(request.user),
    })


def _row(answer) -> dict:
    """A C-FIND answer as text for the results table (templates cannot read data sets)."""
    return {keyword: _text(answer.get(keyword)) for keyword in RESULT_KEYWORDS}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return ", ".join(str(v) for v in value)
    return str(value)


@require_POST
@privilege_required(Privilege.MOVE)
def remote_retrieve(request):
    remote = get_object_or_404(RemoteAE, pk=request.POST.get("remote") or 0, is_queryable=True)
    study_uids = [uid for uid in request.POST.getlist("study") if uid and len(uid) <= 64]
    if not study_uids:
        messages.error(request, gettext("Select at least one study to retrieve."))
    for study_uid in study_uids:
        remotes.start_retrieve(remote, study_uid, request.user)
    if study_uids:
        messages.success(request, gettext("%(count)s from %(ae_title)s queued.") % {"count": count(len(study_uids), 'retrieve', 'retrieves'), "ae_title": remote.ae_title})
    back = request.POST.get("back", "")  # the search's query string, to show the results again
    url = reverse("dicom:remote-search")
    return redirect(f"{url}?{back}" if back and url_has_allowed_host_and_scheme(f"{url}?{back}", None) else url)
