"""Study and image notes, and their attachments (seed 004: bulletin-board notes; attachments
of text, Word, PDF, ZIP, audio and video for users with Upload; and key images, JPEG and PNG).

Attachments are stored under `<data>/attachments/<aa>/<sha256>` (never under the uploaded
name, invariant 5), with a size limit and a list of allowed kinds; they are downloaded as
attachments, with the type we decided. Only images that Pillow reads as the JPEG or PNG their
name says are shown inline (in an <img>, sandboxed). A refused file refuses only itself: the
note keeps its text and its other files, and says which were left out and why.
"""

import hashlib
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from audit.journal import Action, record

from .models import Attachment, Note
from .humanize import count

# extension -> content type we serve it with
ALLOWED_TYPES = {
    ".txt": "text/plain", ".pdf": "application/pdf", ".rtf": "application/rtf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".zip": "application/zip",
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".ogg": "audio/ogg",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".avi": "video/x-msvideo",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
}
# Images shown inline in the notes: their content type -> the format Pillow must read them as.
INLINE_IMAGES = {"image/jpeg": "JPEG", "image/png": "PNG"}
# What the first bytes of some kinds must be, so a renamed executable is not accepted as a PDF.
MAGIC = {".pdf": [b"%PDF"], ".zip": [b"PK\x03\x04", b"PK\x05\x06"], ".docx": [b"PK\x03\x04"],
         ".doc": [b"\xd0\xcf\x11\xe0"], ".jpg": [b"\xff\xd8\xff"], ".jpeg": [b"\xff\xd8\xff"],
         ".png": [b"\x89PNG\r\n\x1a\n"]}
MAX_NOTE_CHARS = 10000


class NoteError(ValueError):
    """Input that cannot become a note or an attachment; the message is shown to the user."""


def attachments_dir() -> Path:
    return settings.SHARED_DIR / "attachments"


def safe_display_name(name: str) -> str:
    """The uploaded name, reduced to something harmless to show and to offer as a file name."""
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = re.sub(r"[^\w .()\-]", "_", base)[:200]
    return base or "attachment"


def check_upload(upload) -> str:
    """The content type for an uploaded file, or NoteError saying why it is refused."""
    extension = Path(upload.name).suffix.lower()
    if extension not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise NoteError(f"{safe_display_name(upload.name)}: this kind of file cannot be attached (allowed: {allowed})")
    limit = settings.PACS_ATTACHMENT_MAX_MB * 1024 * 1024
    if upload.size > limit:
        raise NoteError(f"{safe_display_name(upload.name)} is larger than the limit of {settings.PACS_ATTACHMENT_MAX_MB} MB")
    if upload.size == 0:
        raise NoteError(f"{safe_display_name(upload.name)} is empty")
    if extension in MAGIC:
        head = upload.read(8)
        upload.seek(0)
        if not any(head.startswith(magic) for magic in MAGIC[extension]):
            raise NoteError(f"{safe_display_name(upload.name)} is not really a {extension} file")
    content_type = ALLOWED_TYPES[extension]
    if content_type in INLINE_IMAGES:
        _check_image(upload, INLINE_IMAGES[content_type])
    return content_type


def _check_image(upload, expected_format: str) -> None:
    """An image to show inline must be one Pillow reads as what its name says."""
    from PIL import Image

    try:
        with Image.open(upload) as image:
            found = image.format
            image.verify()
    except Exception:
        found = None
    finally:
        upload.seek(0)
    if found != expected_format:
        raise NoteError(f"{safe_display_name(upload.name)} is not a readable {expected_format} image")


def is_inline_image(attachment: Attachment) -> bool:
    return attachment.content_type in INLINE_IMAGES


def _store(upload) -> tuple[str, str, int]:
    """Write an upload durably under its hash; returns (relative path, sha256, size)."""
    folder = attachments_dir()
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=folder, delete=False) as temp:
        for chunk in upload.chunks():
            digest.update(chunk)
            size += len(chunk)
            temp.write(chunk)
        temp.flush()
        os.fsync(temp.fileno())
    sha256 = digest.hexdigest()
    relative = f"{sha256[:2]}/{sha256}"
    target = folder / relative
    target.parent.mkdir(exist_ok=True)
    os.replace(temp.name, target)
    return relative, sha256, size


def add_note(study, author, text: str, uploads=(), instance=None, journal=None) -> Note:
    """A note with the attachments that pass the checks; a refused file refuses only itself
    (`note.refused` lists why). If nothing is left (no text, every file refused), NoteError.
    `journal(note)` runs inside the note's transaction (the journal entry)."""
    text = (text or "").strip()
    if not text and not uploads:
        raise NoteError("Write something or attach a file.")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteError(f"A note holds at most {MAX_NOTE_CHARS} characters.")
    checked, refused = [], []
    for upload in uploads:
        try:
            checked.append((upload, check_upload(upload)))
        except NoteError as error:
            refused.append(str(error))
    if not text and not checked:
        raise NoteError("; ".join(refused))
    stored = [(upload, content_type, *_store(upload)) for upload, content_type in checked]
    with transaction.atomic():
        note = Note.objects.create(
            study=study, instance=instance, author=author,
            author_name=author.get_full_name() or author.get_username(), text=text,
        )
        note.refused = refused
        for upload, content_type, relative, sha256, size in stored:
            Attachment.objects.create(
                note=note, original_name=safe_display_name(upload.name), content_type=content_type,
                size=size, sha256=sha256, file_path=relative,
            )
        if journal is not None:
            journal(note)
    return note


def do_add_note(study, text: str, uploads=(), instance=None, *, acting_user, request=None) -> Note:
    """A person adds a note (and attachments: the interface checks Upload) to a study they may
    see; its journal entry is written in the note's transaction."""
    from .actions import require_visible

    action = Action.UPLOAD if uploads else Action.MODIFY
    require_visible(acting_user, [study], action, request=request)

    def journal(note: Note) -> None:
        record(action, request=request, user=acting_user, patient_id=study.patient.patient_id,
               study_uid=study.study_instance_uid, target=f"note {note.pk}",
               detail=f"{len(uploads) - len(note.refused)} of {count(len(uploads), 'attachment', 'attachments')} kept")

    return add_note(study, acting_user, text, uploads, instance, journal)


def attachment_file(attachment: Attachment) -> Path:
    return attachments_dir() / attachment.file_path
