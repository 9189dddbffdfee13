"""OHIF v3 in headless Chromium, served at /viewer/ and reading our /dicomweb/ with the
browser's session: a user logs in, opens a CT study in OHIF and sees its image; scrolling
moves through the slices; a length measured across the image reads in millimetres (the pixel
spacing came through the metadata). Needs OHIF installed (`make ohif`); screenshots go to test-artifacts/."""

import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from pacsone.dicomweb.viewer import ohif_dir
from pacsone.ingest import Origin, ingest_file
from tests.browser_support import ARTIFACTS, _missing, browser_page, log_in
from tests.helpers import make_dataset, write_dataset
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

STUDY, SERIES, SLICES = "1.2.826.9.5", "1.2.826.9.5.1", 10


def phantom(number: int) -> bytes:
    """A 128x128 CT slice (stored value = HU + 1024): a body with a disc that grows per slice."""
    y, x = np.mgrid[-64:64, -64:64]
    hu = np.full((128, 128), -1000, np.int16)
    hu[(x / 55.0) ** 2 + (y / 40.0) ** 2 < 1] = 40
    hu[x ** 2 + y ** 2 < (5 + 2 * number) ** 2] = 700
    return (hu + 1024).astype(np.int16).tobytes()


@pytest.fixture
def ct_study(tmp_path):
    for number in range(1, SLICES + 1):
        ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.{number}", rows=128,
                          patient_name="OHIF^OLGA", patient_id="MRN5005", InstanceNumber=number,
                          WindowCenter="40", WindowWidth="400", RescaleIntercept="-1024", RescaleSlope="1",
                          StudyDescription="CT HEAD", SeriesDescription="Axial", SeriesNumber=1,
                          ImagePositionPatient=[0, 0, number * 5], ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                          PixelSpacing=[1, 1], SliceThickness="5", FrameOfReferenceUID=f"{STUDY}.9")
        ds.PixelData = phantom(number)
        assert ingest_file(write_dataset(ds, tmp_path / f"{number}.dcm"), Origin("import")).outcome.accepted


def viewport_pixels(page) -> np.ndarray:
    canvas = page.locator(".cornerstone-canvas, canvas").first
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"))


def wait_for_image(page, timeout: float = 60) -> np.ndarray:
    """The viewport's pixels once it shows an image (bright disc on a dark background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pixels = viewport_pixels(page)
            if pixels.size and pixels.max() > 150 and pixels.std() > 20:
                return pixels
        except Exception:
            pass
        time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / "ohif-timeout.png"))
    raise AssertionError("OHIF showed no image")


def measure_a_length(page, screen_pixels: int) -> float:
    """Draw a horizontal length of `screen_pixels` across the middle of the viewport; what OHIF
    reads, in mm (OHIF writes "px" instead when an image has no pixel spacing)."""
    tour = page.locator("button:visible", has_text="Skip all")  # OHIF's guided tour
    if tour.count():
        tour.first.click()
    page.click("[data-cy=Length-btn]")
    box = page.locator("[data-cy=viewport-pane] canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2 - screen_pixels / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + screen_pixels * step / 10, y, steps=2)
    page.mouse.up()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = page.evaluate("[...document.querySelectorAll('svg text')].map(t => t.textContent).join('|')")
        found = re.search(r"([0-9.]+) mm", texts)
        if found:
            return float(found.group(1))
        time.sleep(0.3)
    raise AssertionError("no length measurement shown")


def test_a_user_opens_a_ct_study_in_ohif_and_scrolls_it(live_server, ct_study):
    if not (ohif_dir() / "index.html").is_file():
        _missing("OHIF is not installed (make ohif)")
    make_user("reader", ["view"], first_name="Rhea", last_name="Reader")
    ARTIFACTS.mkdir(exist_ok=True)
    requests = []
    with browser_page(1400, 900) as page:
        page.on("request", lambda request: requests.append(request.url))
        log_in(page, live_server.url, "reader", PASSWORD)
        page.goto(f"{live_server.url}/viewer/viewer?StudyInstanceUIDs={STUDY}")
        first = wait_for_image(page)
        page.screenshot(path=str(ARTIFACTS / "ohif-study.png"))
        page.locator(".cornerstone-canvas, canvas").first.hover()
        for _ in range(4):
            page.mouse.wheel(0, 120)
            time.sleep(0.3)
        time.sleep(1)
        later = wait_for_image(page)
        page.screenshot(path=str(ARTIFACTS / "ohif-scrolled.png"))
        length = measure_a_length(page, 300)
        page.screenshot(path=str(ARTIFACTS / "ohif-length.png"))
    assert not np.array_equal(first, later), "scrolling did not change the image"
    # 300 screen pixels across a 128 mm image shown about 860 pixels high: some 45 mm (OHIF's
    # drag starts a few pixels late, so a little less); never pixels, never the whole image.
    assert 30 < length < 50, length
    assert any("/dicomweb/studies/" in url and "/frames/" in url for url in requests)
    assert not [url for url in requests if not url.startswith(live_server.url) and not url.startswith(("data:", "blob:"))]
