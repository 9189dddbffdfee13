"""Notes pages: the discussion of a study (and of its images), attachments to download."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome, record

from ..models import Attachment, Instance, Study
from ..notes import NoteError, add_note, attachment_file
from ..visibility import visible_study_or_404


def _instance_of(study: Study, sop_uid: str) -> Instance | None:
    if not sop_uid:
        return None
    instance = Instance.objects.filter(series__study=study, sop_instance_uid=sop_uid).first()
    if instance is None:
        raise Http404("no such image in this study")
    return instance


@login_required
def study_notes(request, study_uid):
    study = visible_study_or_404(request, study_uid)
    subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}
    instance = _instance_of(study, request.POST.get("instance") or request.GET.get("instance", ""))
    may_attach = has_privilege(request.user, Privilege.UPLOAD)
    if request.method == "POST":
        uploads = request.FILES.getlist("attachments")
        if uploads and not may_attach:
            record(Action.UPLOAD, request=request, outcome=Outcome.DENIED, target="note attachment", **subject)
            messages.error(request, "Attaching files needs the Upload privilege.")
        else:
            try:
                note = add_note(study, request.user, request.POST.get("text", ""), uploads, instance)
            except NoteError as error:
                messages.error(request, str(error))
            else:
                record(Action.UPLOAD if uploads else Action.MODIFY, request=request, target=f"note {note.pk}",
                       detail=f"{len(uploads)} attachment(s)", **subject)
                messages.success(request, "Note added.")
                anchor = f"?instance={instance.sop_instance_uid}" if instance else ""
                return redirect(request.path + anchor)
    notes = study.notes.select_related("instance").prefetch_related("attachments")
    if instance is not None:
        notes = notes.filter(instance=instance)
    record(Action.VIEW, request=request, target="notes", **subject)
    return render(request, "pacsone/notes.html", {
        "study": study, "notes": notes, "instance": instance, "may_attach": may_attach,
        "text": request.POST.get("text", "") if request.method == "POST" else "",
    })


@login_required
def attachment_download(request, pk):
    visible = Study.objects.visible_to(request.user)
    attachment = get_object_or_404(Attachment.objects.select_related("note__study__patient"), pk=pk, note__study__in=visible)
    path = attachment_file(attachment)
    if not path.exists():
        raise Http404("the attachment's file is missing")
    study = attachment.note.study
    record(Action.VIEW, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"attachment {attachment.pk}")
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=attachment.original_name,
                            content_type=attachment.content_type)
    response["Content-Security-Policy"] = "sandbox"
    return response
