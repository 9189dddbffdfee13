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


@pytest.fixture
def ct_study(tmp_path):
    for number in range(1, SLICES + 1):
        ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.{number}", rows=128,
                          patient_name="SMITH^ANNA", patient_id="MRN1001", InstanceNumber=number,
                          WindowCenter="40", WindowWidth="400", RescaleIntercept="-1024", RescaleSlope="1",
                          StudyDescription="CT CHEST", SeriesDescription="Axial", SliceLocation=str(number * 5))
        ds.PixelData = phantom(number)
        assert ingest_file(write_dataset(ds, tmp_path / f"{number}.dcm"), Origin("import")).outcome.accepted
    return Study.objects.get(study_instance_uid=STUDY)


def overlay(page, corner: str) -> str:
    return page.inner_text(f"#ov-{corner}")


def wait_for_image(page) -> None:
    wait_until(page, "document.getElementById('image')?.complete && document.getElementById('image').naturalWidth > 0")


def test_a_radiologist_finds_views_windows_marks_and_downloads_a_study(live_server, ct_study, tmp_path):
    make_user("rad", ["view", "mark_study", "download"], first_name="Rita", last_name="Rad")
    with browser_page() as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        page.fill("input[name=patient_name]", "smi*")
        page.click("#search button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "1 found" in page.inner_text("main")
        screenshot(page, "study-list")

        page.click("text=SMITH^ANNA")
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

        # Window by dragging: the server renders the new window.
        box = page.locator("#viewport").bounding_box()
        with page.expect_response(lambda r: "/frame?frame=0&wc=" in r.url and r.status == 200):
            page.mouse.move(box["x"] + 200, box["y"] + 200)
            page.mouse.down()
            page.mouse.move(box["x"] + 300, box["y"] + 250, steps=5)
            page.mouse.up()
        assert "WL 40  WW 400" not in overlay(page, "br")

        # A window preset from the header's list.
        lung = [o for o in page.locator("#preset option").all_inner_texts() if "Lung" in o][0]
        with page.expect_response(lambda r: "wc=-600.0&ww=1500.0" in r.url):
            page.select_option("#preset", label=lung)
        wait_for_image(page)
        assert "WL -600  WW 1500" in overlay(page, "br")
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


def test_an_ended_session_is_explained_in_the_viewer(live_server, ct_study):
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


def test_delete_asks_first_and_select_all_works_under_the_csp(live_server, ct_study):
    """Issue 17: the delete form's hidden field named "confirm" shadowed confirm() in its inline
    handler, so one click deleted the study. The static script asks through window.confirm."""
    make_user("editor", ["view", "modify", "export"], first_name="Ed", last_name="Itor")
    with browser_page() as page:
        log_in(page, live_server.url, "editor", PASSWORD)
        page.check("th input[type=checkbox]")  # select all (pages.js)
        assert page.is_checked("input[name=study]")
        page.goto(f"{live_server.url}/studies/{STUDY}/")
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.click("button.danger")
        page.wait_for_load_state("networkidle")
        assert asked == ["Delete this study and all its images for good?"]
        assert Study.objects.filter(study_instance_uid=STUDY).exists()  # dismissed: still there
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button.danger")
        page.wait_for_load_state("networkidle")
        assert not Study.objects.filter(study_instance_uid=STUDY).exists()
