"""The HL7 pages (System Administration): the message log (search, the raw message and its
ACK, re-processing), the destinations, the worklist, and patient merges with their undo."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record
from pacsone.actions import require_visible
from pacsone.humanize import count
from pacsone.models import Study

from .api import search_messages, search_worklist
from .destinations import EVENTS, DestinationError, do_add_destination, do_remove_destination
from .inbound import reprocess
from .models import Destination, Message, PatientMerge, ScheduledStep
from .patients import NotApplied, do_unmerge

PER_PAGE = 50


@privilege_required(Privilege.SYSTEM_ADMIN)
def home(request):
    """/hl7/: the message log, the HL7 pages' first page."""
    return redirect("hl7:messages")


@privilege_required(Privilege.SYSTEM_ADMIN)
def message_list(request):
    page = Paginator(search_messages(request.GET), PER_PAGE).get_page(request.GET.get("page"))
    record(Action.VIEW, request=request, target="HL7 message log", detail=request.GET.urlencode()[:1000])
    return render(request, "hl7/messages.html", {"page": page, "params": request.GET,
                                                 "statuses": Message.Status.choices})


@privilege_required(Privilege.SYSTEM_ADMIN)
def message_detail(request, pk: int):
    message = get_object_or_404(Message, pk=pk)
    record(Action.VIEW, request=request, patient_id=message.patient_id, target=f"HL7 message {message.pk}")
    return render(request, "hl7/message.html", {"message": message, "segments": message.text.split("\r"),
                                                "ack_segments": message.ack.split("\r")})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def message_reprocess(request, pk: int):
    message = reprocess(get_object_or_404(Message, pk=pk), acting_user=request.user, request=request)
    level = messages.SUCCESS if message.status == Message.Status.APPLIED else messages.ERROR
    messages.add_message(request, level, f"Re-processed: {message.get_status_display()}. {message.reason}")
    return redirect("hl7:message", pk=pk)


class DestinationForm(forms.Form):
    name = forms.CharField(max_length=64)
    host = forms.CharField(max_length=255)
    port = forms.IntegerField(min_value=1, max_value=65535)
    events = forms.MultipleChoiceField(choices=Destination.Event.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=["received"])
    receiving_application = forms.CharField(max_length=64, required=False, label="Receiving application (MSH-5)")
    receiving_facility = forms.CharField(max_length=64, required=False, label="Receiving facility (MSH-6)")


@privilege_required(Privilege.SYSTEM_ADMIN)
def destination_list(request):
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        try:
            do_add_destination(values["name"], values["host"], values["port"], values["events"],
                               acting_user=request.user, request=request,
                               receiving_application=values["receiving_application"],
                               receiving_facility=values["receiving_facility"])
        except DestinationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, gettext("Destination %(values)s added.") % {"values": values['name']})
            return redirect("hl7:destinations")
    return render(request, "hl7/destinations.html", {"destinations": Destination.objects.all(), "form": form,
                                                     "events": EVENTS})


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def destination_remove(request, pk: int):
    destination = get_object_or_404(Destination, pk=pk)
    do_remove_destination(destination, acting_user=request.user, request=request)
    messages.success(request, gettext("Destination %(name)s removed.") % {"name": destination.name})
    return redirect("hl7:destinations")


@privilege_required(Privilege.SYSTEM_ADMIN)
def worklist(request):
    page = Paginator(search_worklist(request.GET).order_by("-start_date", "-start_time", "-id"), PER_PAGE).get_page(
        request.GET.get("page"))
    record(Action.VIEW, request=request, target="modality worklist", detail=request.GET.urlencode()[:1000])
    return render(request, "hl7/worklist.html", {"page": page, "params": request.GET,
                                                 "states": ScheduledStep.State.choices})


@privilege_required(Privilege.SYSTEM_ADMIN)
def merge_list(request):
    page = Paginator(PatientMerge.objects.all(), PER_PAGE).get_page(request.GET.get("page"))
    record(Action.VIEW, request=request, target="patient merges")
    return render(request, "hl7/merges.html", {"page": page})


@privilege_required(Privilege.SYSTEM_ADMIN)
def merge_undo(request, pk: int):
    """Undo a merge: only by someone who may see (and so change) every study it moved. The Undo
    button leads to a page that says what will move where; only its confirm button undoes."""
    merge = PatientMerge.objects.filter(pk=pk).first()
    if merge is None:
        raise Http404("Not found.")
    studies = list(Study.objects.filter(pk__in=merge.study_pks).select_related("patient"))
    require_visible(request.user, studies, Action.MODIFY, request=request)
    if request.method != "POST" or request.POST.get("confirmed") != "yes":
        record(Action.VIEW, request=request, target=f"merge {merge.pk} undo form")
        return render(request, "hl7/merge_undo.html", {
            "merge": merge, "studies": studies, "moved": count(len(studies), "study", "studies")})
    try:
        moved = do_unmerge(merge, acting_user=request.user, request=request)
    except NotApplied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, gettext("Merge undone: %(count)s back with patient %(source_patient_id)s.") % {"count": count(moved, 'study', 'studies'), "source_patient_id": merge.source_patient_id})
    return redirect("hl7:merges")


