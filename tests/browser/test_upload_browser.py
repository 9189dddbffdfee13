"""In headless Chromium (issue 17): upload a folder (nested, as a dropped or chosen folder
arrives) and loose files, follow the job, and see one result per file under the user's own
names (the path inside the folder), no server path, and links to the studies stored; files
dropped on the drop zone are taken too. Screenshots at three widths go to test-artifacts/."""

import pytest

from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.helpers import make_file
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]


def test_a_folder_and_loose_files_upload_with_a_result_per_file(live_server, tmp_path):
    make_user("uploader", ["upload", "view"])
    folder = tmp_path / "CD" / "SERIES1"
    folder.mkdir(parents=True)
    make_file(folder, "IM0001", patient_name="DOE^JOHN", patient_id="UP1", StudyDescription="CT HEAD")
    make_file(folder, "IM0002", patient_name="DOE^JOHN", patient_id="UP1", StudyDescription="CT HEAD",
              study_uid=None)
    (tmp_path / "notes.txt").write_text("not an image")
    with browser_page(width=1440) as page:
        log_in(page, live_server.url, "uploader", PASSWORD)
        page.goto(f"{live_server.url}/upload/")
        page.set_input_files("#folder", str(tmp_path / "CD"))
        page.set_input_files("#files", str(tmp_path / "notes.txt"))
        assert "3 files chosen" in page.inner_text("#chosen")
        screenshot(page, "upload-chosen-1440")
        page.click("#send")
        wait_until(page, "!document.getElementById('results-box').hidden", timeout=30)
        rows = page.eval_on_selector_all("#results tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        by_name = {row[0]: row for row in rows}
        assert set(by_name) == {"CD/SERIES1/IM0001", "CD/SERIES1/IM0002", "notes.txt"}, rows
        assert by_name["CD/SERIES1/IM0001"][1] == "stored" and by_name["CD/SERIES1/IM0001"][2].startswith("DOE, John")
        assert by_name["notes.txt"][1].startswith("unreadable")
        text = page.inner_text("main")
        assert "2 of 3 files stored" in text and "/uploads/" not in text and ".upload" not in text
        for width in (390, 768, 1440):
            page.set_viewport_size({"width": width, "height": 900})
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            screenshot(page, f"upload-results-{width}")
        page.click("#results >> text=DOE, John")
        page.wait_for_load_state("networkidle")
        assert "CT HEAD" in page.inner_text("h1")


def test_files_dropped_on_the_zone_are_taken(live_server):
    make_user("uploader", ["upload"])
    with browser_page(width=768) as page:
        log_in(page, live_server.url, "uploader", PASSWORD)
        page.goto(f"{live_server.url}/upload/")
        page.evaluate("""() => {
            const data = new DataTransfer();
            data.items.add(new File(["x"], "dropped-1.dcm"));
            data.items.add(new File(["y"], "dropped-2.dcm"));
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""")
        wait_until(page, "document.getElementById('chosen').textContent.includes('2 files chosen')")
        assert "dropped-1.dcm, dropped-2.dcm" in page.inner_text("#chosen")
