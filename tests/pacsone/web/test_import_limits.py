"""Import and upload limits: the web Import reads only below PACS_IMPORT_ROOTS (symlinks
resolved first) and says the same for a missing path and one outside the roots; a ZIP bomb is
refused quickly, whether uploaded or imported, before anything is extracted."""

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Entry
from pacsone.models import Instance, Study
from routing.models import Job
from tests.helpers import make_file, stored_files, temp_leftovers
from tests.pacsone.web.test_transfers import dicom_bytes
from tests.people import make_user

pytestmark = pytest.mark.django_db

NOT_IMPORTABLE = b"The path is not a folder, DICOMDIR or ZIP file in the import folders."


def zip_of_zeros(megabytes_expanded: int = 1024) -> bytes:
    """About 1 MB of ZIP that expands to `megabytes_expanded` MB of zeros."""
    buffer = io.BytesIO()
    block = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("zeros.dcm", "w", force_zip64=True) as member:
            for _ in range(megabytes_expanded):
                member.write(block)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return zip_of_zeros()


@pytest.fixture
def roots(tmp_path, settings):
    root = tmp_path / "import"
    root.mkdir()
    settings.PACS_IMPORT_ROOTS = [root.resolve()]
    return root


@pytest.fixture
def importer(client):
    client.force_login(make_user("imp", ["import"]))
    return client


def test_it_imports_below_a_root(importer, roots):
    make_file(roots / "cd1", "IM1", patient_id="CD1")
    response = importer.post("/import/", {"path": str(roots / "cd1")})
    job = Job.objects.get()
    assert response.status_code == 302 and job.state == Job.State.DONE and "1 stored" in job.message


def test_the_page_names_the_roots(importer, roots):
    assert str(roots.resolve()).encode() in importer.get("/import/").content


def test_missing_and_outside_paths_get_the_same_answer(importer, roots, tmp_path):
    outside = tmp_path / "elsewhere"
    make_file(outside, "IM1", patient_id="OUT1")
    answers = [importer.post("/import/", {"path": path}) for path in
               (str(outside), str(roots / "missing"), "/etc", str(roots / ".." / "elsewhere"))]
    assert all(a.status_code == 200 and NOT_IMPORTABLE in a.content for a in answers)
    said = {tuple(str(m) for m in a.context["messages"]) for a in answers}
    assert said == {("The path is not a folder, DICOMDIR or ZIP file in the import folders.",)}  # nothing tells them apart
    assert not Job.objects.exists() and not Instance.objects.exists()
    assert Entry.objects.filter(action="import", outcome="denied").count() == 4


def test_a_symlink_out_of_a_root_is_resolved_before_the_check(importer, roots, tmp_path):
    outside = tmp_path / "secret"
    make_file(outside, "IM1", patient_id="SECRET1")
    (roots / "link").symlink_to(outside, target_is_directory=True)
    response = importer.post("/import/", {"path": str(roots / "link")})
    assert NOT_IMPORTABLE in response.content and not Job.objects.exists()


def test_a_symlinked_file_inside_a_root_is_not_read(importer, roots, tmp_path):
    make_file(roots / "cd", "IM1", patient_id="INSIDE1")
    secret = make_file(tmp_path / "secret", "IM2", patient_id="SECRET1")
    (roots / "cd" / "IM2").symlink_to(secret)
    importer.post("/import/", {"path": str(roots / "cd")})
    job = Job.objects.get()
    assert "1 stored" in job.message and "IM2: outside the import folders" in job.message
    assert str(tmp_path) not in job.message  # no server path in the job's message
    assert list(Study.objects.values_list("patient__patient_id", flat=True)) == ["INSIDE1"]


def test_no_root_means_no_web_import(importer, settings, tmp_path):
    settings.PACS_IMPORT_ROOTS = []
    make_file(tmp_path / "cd", "IM1")
    assert NOT_IMPORTABLE in importer.post("/import/", {"path": str(tmp_path / "cd")}).content


def test_an_imported_zip_bomb_is_refused_before_extraction(importer, roots, bomb):
    (roots / "bomb.zip").write_bytes(bomb)
    started = time.monotonic()
    importer.post("/import/", {"path": str(roots / "bomb.zip")})
    job = Job.objects.get()
    assert time.monotonic() - started < 5
    assert job.failed == 1 and "bomb.zip: ZIP refused: it expands" in job.message
    assert not stored_files() and not temp_leftovers() and not Instance.objects.exists()


def test_an_uploaded_zip_bomb_is_refused_at_once(client, bomb, settings):
    client.force_login(make_user("up", ["upload"]))
    started = time.monotonic()
    response = client.post("/upload/", {"files": [SimpleUploadedFile("bomb.zip", bomb)]})
    assert time.monotonic() - started < 5
    assert response.status_code == 400
    assert response.json()["error"].startswith("bomb.zip: ZIP refused: it expands 1")
    assert not Job.objects.exists() and not list((settings.DATA_DIR / "uploads").glob("*/*"))
    assert Entry.objects.filter(action="upload", outcome="failure").exists()


def test_the_expanded_size_limit_is_a_setting(client, settings):
    settings.PACS_ZIP_MAX_EXPANDED_MB = 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # stored: ratio 1
        archive.writestr("a.dcm", dicom_bytes(patient_id="Z1", rows=800))
    client.force_login(make_user("up", ["upload"]))
    response = client.post("/upload/", {"files": [SimpleUploadedFile("big.zip", buffer.getvalue())]})
    assert response.status_code == 400 and "more than 1 MB" in response.json()["error"]
