"""Notes pages: the discussion of a study (and of its images), attachments to download."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseNotFound
from django.shortcuts import redirect, render

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome, record

from ..access import access_attachment, access_instance, access_study
from ..notes import NoteError, attachment_file, do_add_note


@login_required
def study_notes(request, study_uid):
    study = access_study(request, study_uid)
    subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}
    sop_uid = request.POST.get("instance") or request.GET.get("instance", "")
    instance = access_instance(request, study_uid, sop_uid) if sop_uid else None
    may_attach = has_privilege(request.user, Privilege.UPLOAD)
    if request.method == "POST":
        uploads = request.FILES.getlist("attachments")
        if uploads and not may_attach:
            record(Action.UPLOAD, request=request, outcome=Outcome.DENIED, target="note attachment", **subject)
            messages.error(request, "Attaching files needs the Upload privilege.")
        else:
            try:
                do_add_note(study, request.POST.get("text", ""), uploads, instance,
                            acting_user=request.user, request=request)
            except NoteError as error:
                messages.error(request, str(error))
            else:
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
    attachment = access_attachment(request, pk)
    path = attachment_file(attachment)
    study = attachment.note.study
    if not path.exists():
        record(Action.VIEW, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
               target=f"attachment {attachment.pk}", outcome=Outcome.FAILURE, detail="the attachment's file is missing")
        return HttpResponseNotFound("The attachment's file is missing.", content_type="text/plain")
    record(Action.VIEW, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"attachment {attachment.pk}")
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=attachment.original_name,
                            content_type=attachment.content_type)
    response["Content-Security-Policy"] = "sandbox"
    return response
