"""In headless Chromium: search the study list, open a study, scroll and window a CT series in
the viewer, play cine, mark the study read, download it; no Download button without the
privilege; an undecodable image shows its reason. Screenshots go to test-artifacts/."""

import io
import zipfile

import numpy as np
import pytest

from pacsone.ingest import Origin, ingest_file
from pacsone.models import Study
from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.helpers import make_dataset, pydicom_file, write_dataset
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

STUDY, SERIES = "1.2.826.9.1", "1.2.826.9.1.1"
SLICES = 12


def phantom(number: int) -> bytes:
    """A 128x128 CT slice in stored values (HU + 1024): air, a body, two lungs that grow."""
    y, x = np.mgrid[-64:64, -64:64]
    hu = np.full((128, 128), -1000, np.int16)
    hu[(x / 55.0) ** 2 + (y / 40.0) ** 2 < 1] = 40
    radius = 10 + number
    hu[((x + 22) ** 2 + y ** 2 < radius ** 2) | ((x - 22) ** 2 + y ** 2 < radius ** 2)] = -800
    return (hu + 1024).astype(np.int16).tobytes()


def make_ct_study(tmp_path, slices: int) -> Study:
    for number in range(1, slices + 1):
        ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.{number}", rows=128,
                          patient_name="SMITH^ANNA", patient_id="MRN1001", InstanceNumber=number,
                          WindowCenter="40", WindowWidth="400", RescaleIntercept="-1024", RescaleSlope="1",
                          StudyDescription="CT CHEST", SeriesDescription="Axial", SliceLocation=str(number * 5))
        ds.PixelData = phantom(number)
        assert ingest_file(write_dataset(ds, tmp_path / f"{number}.dcm"), Origin("import")).outcome.accepted
    return Study.objects.get(study_instance_uid=STUDY)


@pytest.fixture
def ct_study(tmp_path):
    return make_ct_study(tmp_path, SLICES)


@pytest.fixture
def long_ct_study(tmp_path):
    """Longer than the viewer fetches ahead (48 slices), so its last slice needs the server."""
    return make_ct_study(tmp_path, 70)


def overlay(page, corner: str) -> str:
    return page.inner_text(f"#ov-{corner}")


SHOWN = ("window.pacsViewer && ((window.pacsViewer.shown() === 'pixels' && !document.getElementById('canvas').hidden)"
         " || (document.getElementById('image').complete && document.getElementById('image').naturalWidth > 0))")


def wait_for_image(page) -> None:
    wait_until(page, SHOWN)


def canvas_sum(page) -> int:
    """The sum of the shown frame's gray levels (a sample of its canvas)."""
    return page.evaluate("""() => {
        const canvas = document.getElementById('canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let i = 0; i < pixels.length; i += 4) sum += pixels[i];
        return sum;
    }""")


def test_a_radiologist_finds_views_windows_marks_and_downloads_a_study(live_server, ct_study, tmp_path):
    make_user("rad", ["view", "mark_study", "download"], first_name="Rita", last_name="Rad")
    with browser_page() as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        page.fill("input[name=q]", "smi")
        page.click("#search button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "1 found" in page.inner_text("main")
        screenshot(page, "study-list")

        page.click("text=SMITH, Anna")
        page.wait_for_load_state("networkidle")
        assert "CT CHEST" in page.inner_text("h1")
        wait_until(page, "[...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth > 0)")
        screenshot(page, "study")

        page.click("text=Open viewer")
        wait_for_image(page)
        assert "(1/12)" in overlay(page, "bl") and "SMITH, Anna" in overlay(page, "tl")
        assert "WL 40  WW 400" in overlay(page, "br")
        screenshot(page, "viewer")

        # Scroll the stack with the wheel and the keys.
        page.hover("#viewport")
        for _ in range(3):
            page.mouse.wheel(0, 120)
        wait_until(page, "document.getElementById('ov-bl').textContent.includes('(4/12)')")
        page.keyboard.press("ArrowDown")
        assert "(5/12)" in overlay(page, "bl")
        page.keyboard.press("End")
        assert "(12/12)" in overlay(page, "bl") and "Loc 60" in overlay(page, "bl")

        # Window by dragging: windowed in the browser from the frame's real values, no request.
        wait_for_image(page)
        box = page.locator("#viewport").bounding_box()
        before = canvas_sum(page)
        requests = []
        page.on("request", lambda r: requests.append(r.url) if "/frame" in r.url or "/pixels" in r.url else None)
        page.mouse.move(box["x"] + 200, box["y"] + 200)
        page.mouse.down()
        page.mouse.move(box["x"] + 300, box["y"] + 250, steps=5)
        page.mouse.up()
        wait_until(page, "!document.getElementById('ov-br').textContent.includes('WL 40  WW 400')")
        assert canvas_sum(page) != before and requests == []

        # A window preset from the header's list; the value under the cursor is the real HU.
        lung = [o for o in page.locator("#preset option").all_inner_texts() if "Lung" in o][0]
        page.select_option("#preset", label=lung)
        wait_until(page, "document.getElementById('ov-br').textContent.includes('WL -600  WW 1500')")
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        wait_until(page, "document.getElementById('ov-bl').textContent.includes(' HU')")
        assert "40 HU" in overlay(page, "bl")  # the phantom's body at the centre
        screenshot(page, "viewer-lung-window")

        # Cine runs through the stack and stops.
        page.keyboard.press("Home")
        page.fill("#fps", "20")
        page.click("#play")
        wait_until(page, "!document.getElementById('ov-bl').textContent.includes('(1/12)')")
        page.click("#play")
        assert page.inner_text("#play").startswith("▶")

        # Back on the study: mark it read, then download it.
        page.click("text=← Study")
        page.wait_for_load_state("networkidle")
        page.click("text=Mark read")
        page.wait_for_load_state("networkidle")
        assert "Marked read" in page.inner_text("main")
        assert Study.objects.get(pk=ct_study.pk).read
        with page.expect_download() as info:
            page.click("text=Download ZIP")
        archive = zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read()))
        assert len([n for n in archive.namelist() if n.endswith(".dcm")]) == SLICES


def test_without_download_there_is_no_button_and_the_url_is_403(live_server, ct_study):
    make_user("viewer", ["view"])
    with browser_page() as page:
        log_in(page, live_server.url, "viewer", PASSWORD)
        page.goto(f"{live_server.url}/studies/{STUDY}/")
        assert "Download ZIP" not in page.inner_text("main") and "Mark read" not in page.inner_text("main")
        assert page.goto(f"{live_server.url}/download/{STUDY}.zip").status == 403


def test_an_undecodable_image_shows_its_reason_and_the_header_still_opens(live_server):
    result = ingest_file(pydicom_file("JPEG-lossy.dcm"), Origin("import"))
    study = Study.objects.get(pk=result.study_pk)
    series = study.series.get()
    make_user("viewer", ["view"])
    with browser_page() as page:
        log_in(page, live_server.url, "viewer", PASSWORD)
        page.goto(f"{live_server.url}/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/viewer")
        page.wait_for_selector("#message:not([hidden])")
        assert "cannot be decoded" in page.inner_text("#message")
        screenshot(page, "viewer-undecodable")
        page.goto(f"{live_server.url}{page.get_attribute('#header-link', 'href')}")
        assert "Transfer Syntax UID" in page.inner_text("main")


def test_an_ended_session_is_explained_in_the_viewer(live_server, long_ct_study):
    make_user("viewer", ["view"])
    with browser_page() as page:
        log_in(page, live_server.url, "viewer", PASSWORD)
        page.goto(f"{live_server.url}/studies/{STUDY}/series/{SERIES}/viewer")
        wait_for_image(page)
        page.wait_for_load_state("networkidle")  # no preload in flight would bring a cookie back
        page.context.clear_cookies()  # as when the idle session times out
        page.keyboard.press("End")
        page.wait_for_selector("#message:not([hidden])")
        assert "session has ended" in page.inner_text("#message")


def test_select_all_works_under_the_csp(live_server, ct_study):
    """(Delete's confirmation: test_safe_actions_browser.py.)"""
    make_user("editor", ["view", "modify", "export"], first_name="Ed", last_name="Itor")
    with browser_page() as page:
        log_in(page, live_server.url, "editor", PASSWORD)
        page.check("th input[type=checkbox]")  # select all (pages.js)
        assert page.is_checked("input[name=study]")
