"""Issue 6's acceptance, as a new user would do it in headless Chromium: upload a ZIP with a
progress bar, find the study by a partial name, scroll and window the series, export it as a
DICOMDIR ZIP that pydicom (and dcmtk's dcmdump) read, leave a note with a PDF attached."""

import io
import subprocess
import zipfile

import pytest
from pydicom.fileset import FileSet

from pacsone.models import Attachment, Instance, Note
from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.helpers import dcmtk_program, make_dataset
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

STUDY = "1.2.826.10.1"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def series_zip(path, count=4):
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(1, count + 1):
            ds = make_dataset(study_uid=STUDY, series_uid=STUDY + ".1", sop_uid=f"{STUDY}.1.{number}", rows=64,
                              patient_name="NEWMAN^NORA", patient_id="NN1", InstanceNumber=number,
                              StudyID="1", SeriesNumber=1, WindowCenter="40", WindowWidth="400")
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            archive.writestr(f"CT/{number}.dcm", buffer.getvalue())
    return path


def wait_for_job(page) -> None:
    page.wait_for_url("**/jobs/*/")
    wait_until(page, "['done', 'failed'].includes(document.getElementById('state').textContent.trim())")
    assert page.inner_text("#state").strip() == "done", page.inner_text("#message")


def test_upload_find_view_export_and_note(live_server, tmp_path):
    make_user("dora", ["view", "download", "export", "upload", "mark_study"], first_name="Dora", last_name="Doc")
    with browser_page() as page:
        log_in(page, live_server.url, "dora", PASSWORD)

        page.click("header >> text=Upload")
        page.set_input_files("#files", str(series_zip(tmp_path / "series.zip")))
        page.click("#send")
        wait_until(page, "!document.getElementById('results-box').hidden", timeout=30)
        assert "All 4 files stored" in page.inner_text("#results-title")
        assert page.inner_text("#results tr:first-child td:first-child").startswith("series.zip:")
        assert Instance.objects.filter(series__study__study_instance_uid=STUDY).count() == 4
        screenshot(page, "upload-results")

        page.click("header >> text=Studies")
        page.click("text=Detailed search")
        page.fill("input[name=patient_name]", "new*")
        page.click("#search button[type=submit]")
        page.wait_for_url(lambda url: "patient_name=new" in url)
        page.click("text=NEWMAN, Nora")
        page.wait_for_url(f"**/studies/{STUDY}/")
        page.click("text=Open viewer")
        wait_until(page, "window.pacsViewer && window.pacsViewer.shown() === 'pixels'")
        page.hover("#viewport")
        page.mouse.wheel(0, 120)
        wait_until(page, "document.getElementById('ov-bl').textContent.includes('(2/4)')")
        page.keyboard.press("1")  # the header's window preset
        assert "WL 40  WW 400" in page.inner_text("#ov-br")

        page.click("text=← Study")
        page.wait_for_url(f"**/studies/{STUDY}/")
        page.click("text=Export DICOMDIR ZIP")
        wait_for_job(page)
        with page.expect_download() as info:
            page.click("text=Download the result")
        exported = tmp_path / "export"
        zipfile.ZipFile(info.value.path()).extractall(exported)
        dicomdir = next(exported.rglob("DICOMDIR"))
        assert len(FileSet(dicomdir)) == 4

        page.goto(f"{live_server.url}/studies/{STUDY}/")
        page.click("text=Notes")
        page.fill("textarea[name=text]", "Compared with last year: no change.")
        page.set_input_files("input[name=attachments]", files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        page.click("text=Add note")
        page.wait_for_load_state("networkidle")
        assert "report.pdf" in page.inner_text("main") and "no change" in page.inner_text("main")
        assert Note.objects.get().author_name == "Dora Doc" and Attachment.objects.get().original_name == "report.pdf"
        screenshot(page, "study-note-with-pdf")

    dump = subprocess.run([dcmtk_program("dcmdump"), str(dicomdir)], capture_output=True, text=True)
    assert dump.returncode == 0 and "DirectoryRecordSequence" in dump.stdout
