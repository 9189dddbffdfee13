"""Notes pages: the discussion of a study (and of its images), attachments to download."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome, record

from ..access import access_attachment, access_instance, access_study, journal_denial
from ..notes import NoteError, attachment_file, do_add_note, is_inline_image


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
            messages.error(request, gettext("Attaching files needs the Upload privilege."))
        else:
            try:
                note = do_add_note(study, request.POST.get("text", ""), uploads, instance,
                                   acting_user=request.user, request=request)
            except NoteError as error:
                messages.error(request, gettext("Nothing was added: %(error)s.") % {"error": error})
            else:
                messages.success(request, gettext("Note added."))
                for reason in note.refused:
                    messages.error(request, gettext("Not attached: %(reason)s.") % {"reason": reason})
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
    return _attachment_response(request, pk, inline=False)


@login_required
def attachment_inline(request, pk):
    """A JPEG or PNG attachment shown in the note (checked as an image when attached); any
    other kind is only downloaded."""
    return _attachment_response(request, pk, inline=True)


def _attachment_response(request, pk, *, inline: bool):
    attachment = access_attachment(request, pk)
    if inline and not is_inline_image(attachment):
        journal_denial(request, Action.VIEW, f"attachment {attachment.pk} inline", "not an image: download only")
        raise Http404("Only images are shown inline.")
    path = attachment_file(attachment)
    study = attachment.note.study
    if not path.exists():
        record(Action.VIEW, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
               target=f"attachment {attachment.pk}", outcome=Outcome.FAILURE, detail="the attachment's file is missing")
        return HttpResponseNotFound("The attachment's file is missing.", content_type="text/plain")
    record(Action.VIEW, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"attachment {attachment.pk}")
    response = FileResponse(open(path, "rb"), as_attachment=not inline, filename=attachment.original_name,
                            content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response
