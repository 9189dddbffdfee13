"""Study and image notes with attachments: visibility, the Upload privilege, refused files,
safe downloads, the journal."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Entry
from pacsone.models import Attachment, Instance, Note, Series
from tests.people import make_world

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def world():
    return make_world()


def url(world, name="own"):
    return f"/notes/{world.studies[name].study_instance_uid}/"


def pdf(name="report.pdf", content=PDF):
    return SimpleUploadedFile(name, content, content_type="application/pdf")


@pytest.mark.parametrize("role,study,expected", [
    ("physician", "own", 200), ("physician", "public", 200), ("physician", "other", 404),
    ("power", "other", 200), ("sysadmin", "own", 404), ("root", "other", 200),
])
def test_notes_follow_the_visibility_rule(client, world, role, study, expected):
    client.force_login(world.users[role])
    assert client.get(url(world, study)).status_code == expected
    response = client.post(url(world, study), {"text": "hello"})
    assert response.status_code == (302 if expected == 200 else 404)


def test_a_physician_discusses_her_study(client, world):
    client.force_login(world.users["physician"])
    response = client.post(url(world), {"text": "Please compare with last year."})
    assert response.status_code == 302
    page = client.get(url(world))
    assert b"Please compare with last year." in page.content and b"Jane Smith" in page.content
    assert b'type="file"' not in page.content  # no Upload privilege: no attachment field
    assert Entry.objects.filter(action="modify", study_uid=world.studies["own"].study_instance_uid).exists()


def test_attachments_need_the_upload_privilege(client, world):
    client.force_login(world.users["physician"])
    response = client.post(url(world), {"text": "see file", "attachments": pdf()}, follow=True)
    assert b"needs the Upload privilege" in response.content
    assert not Attachment.objects.exists() and not Note.objects.exists()
    assert Entry.objects.filter(action="upload", outcome="denied").exists()


def test_a_pdf_is_attached_and_downloaded_safely(client, world):
    uploader = world.users["power"]
    uploader.privileges += ["upload"]
    uploader.save()
    client.force_login(uploader)
    response = client.post(url(world), {"text": "report", "attachments": pdf("../../etc/passwd report.pdf")})
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.original_name == "passwd report.pdf" and "/" not in attachment.file_path.split("/", 1)[1]
    download = client.get(f"/notes/attachment/{attachment.pk}/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content) == PDF
    # Jane may see the study, so she may read its attachments; sysadmin may not see it.
    client.force_login(world.users["physician"])
    assert client.get(f"/notes/attachment/{attachment.pk}/").status_code == 200
    client.force_login(world.users["sysadmin"])
    assert client.get(f"/notes/attachment/{attachment.pk}/").status_code == 404


@pytest.mark.parametrize("upload,message", [
    (SimpleUploadedFile("tool.exe", b"MZ\x90\x00"), b"cannot be attached"),
    (SimpleUploadedFile("fake.pdf", b"MZ\x90\x00 not a pdf"), b"is not really a .pdf"),
    (SimpleUploadedFile("empty.txt", b""), b"is empty"),
])
def test_a_refused_file_is_not_stored_and_refuses_only_itself(client, world, upload, message):
    user = world.users["root"]
    client.force_login(user)
    response = client.post(url(world), {"text": "x", "attachments": upload}, follow=True)
    assert message in response.content
    # The note keeps its text (issue 17: a refused attachment refuses only itself).
    assert Note.objects.get().text == "x" and not Attachment.objects.exists()
    upload.seek(0)
    response = client.post(url(world), {"text": "", "attachments": upload}, follow=True)
    assert b"Nothing was added" in response.content and Note.objects.count() == 1


def test_oversized_files_are_refused(client, world, settings):
    settings.PACS_ATTACHMENT_MAX_MB = 1
    client.force_login(world.users["root"])
    big = SimpleUploadedFile("big.txt", b"x" * (1024 * 1024 + 1))
    response = client.post(url(world), {"attachments": big}, follow=True)
    assert b"larger than the limit of 1 MB" in response.content and not Note.objects.exists()


def test_an_empty_note_is_refused(client, world):
    client.force_login(world.users["physician"])
    response = client.post(url(world), {"text": "   "}, follow=True)
    assert b"Write something" in response.content and not Note.objects.exists()


def test_image_notes(client, world):
    from pacsone.models import StorageLocation

    study = world.studies["own"]
    location = StorageLocation.objects.create(name="t", path="/tmp")
    instance = Instance.objects.create(sop_instance_uid="1.2.9.9", sop_class_uid="1.2", series=Series.objects.get(study=study),
                                       transfer_syntax_uid="1.2.840.10008.1.2.1", storage_location=location,
                                       file_path="x", file_size=1, sha256="0" * 64, instance_number=7)
    client.force_login(world.users["physician"])
    client.post(url(world), {"text": "on the image", "instance": instance.sop_instance_uid})
    client.post(url(world), {"text": "on the study"})
    page = client.get(url(world) + f"?instance={instance.sop_instance_uid}")
    assert b"on the image" in page.content and b"on the study" not in page.content
    assert client.get(url(world) + "?instance=9.9.9").status_code == 404
    assert Note.objects.get(text="on the image").instance == instance
