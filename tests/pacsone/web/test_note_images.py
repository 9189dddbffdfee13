"""Notes (issue 17): JPEG and PNG key images are attached and shown inline; a refused file
refuses only itself, the note keeps its text and its other files and says what was left out."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from pacsone.models import Attachment, Note
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db


def image_bytes(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, kind)
    return out.getvalue()


@pytest.fixture
def study():
    return make_study("1.2.826.17.9", "NOTE1", public=True)


def test_key_images_are_attached_and_shown_inline(client, study):
    client.force_login(make_user("rad", ["view", "upload"]))
    files = [SimpleUploadedFile("key.png", image_bytes("PNG")), SimpleUploadedFile("key.jpg", image_bytes("JPEG"))]
    client.post(f"/notes/{study.study_instance_uid}/", {"text": "see images", "attachments": files})
    attachments = list(Attachment.objects.order_by("pk"))
    assert [a.content_type for a in attachments] == ["image/png", "image/jpeg"]
    page = client.get(f"/notes/{study.study_instance_uid}/").content.decode()
    for attachment in attachments:
        assert f'<img src="/notes/attachment/{attachment.pk}/image"' in page
    shown = client.get(f"/notes/attachment/{attachments[0].pk}/image")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    assert "attachment" not in shown.get("Content-Disposition", "") and shown["Content-Security-Policy"] == "sandbox"


def test_a_refused_file_refuses_only_itself(client, study):
    client.force_login(make_user("rad", ["view", "upload"]))
    files = [SimpleUploadedFile("fake.png", b"MZ\x90\x00 not an image"), SimpleUploadedFile("report.txt", b"text"),
             SimpleUploadedFile("tool.exe", b"MZ")]
    response = client.post(f"/notes/{study.study_instance_uid}/", {"text": "with a report", "attachments": files},
                           follow=True)
    page = response.content.decode()
    note = Note.objects.get()
    assert note.text == "with a report" and [a.original_name for a in note.attachments.all()] == ["report.txt"]
    assert "Not attached: fake.png is not really a .png file" in page
    assert "Not attached: tool.exe: this kind of file cannot be attached" in page


def test_a_png_that_pillow_cannot_read_is_refused(client, study):
    client.force_login(make_user("rad", ["view", "upload"]))
    broken = SimpleUploadedFile("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    response = client.post(f"/notes/{study.study_instance_uid}/", {"text": "", "attachments": [broken]}, follow=True)
    assert "Nothing was added: broken.png is not a readable PNG image" in response.content.decode()
    assert not Note.objects.exists()


def test_a_non_image_is_not_shown_inline(client, study):
    client.force_login(make_user("rad", ["view", "upload"]))
    client.post(f"/notes/{study.study_instance_uid}/", {"text": "x", "attachments": [SimpleUploadedFile("a.txt", b"t")]})
    assert client.get(f"/notes/attachment/{Attachment.objects.get().pk}/image").status_code == 404
