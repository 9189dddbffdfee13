"""In headless Chromium: a user with Print ticks a CT study in the study list, presses Print,
previews the film sheets of a 2x2 layout and prints them to dcmtk's dcmprscp; the printer
registry page. Screenshots go to test-artifacts/."""

import pytest

from pacsone.models import Printer
from routing.models import Job
from tests.browser import test_web_browser
from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.pacsone.dicom.print_peers import Dcmprscp
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

STUDY, SERIES = test_web_browser.STUDY, test_web_browser.SERIES
ct_study = test_web_browser.ct_study  # twelve CT slices of a phantom, in a soft-tissue window


@pytest.fixture
def dcmprscp(tmp_path):
    peer = Dcmprscp(tmp_path / "dcmprscp")
    yield peer
    peer.stop()


def test_a_study_is_previewed_and_printed_from_the_study_list(live_server, ct_study, dcmprscp):
    Printer.objects.create(ae_title=dcmprscp.ae_title, host="127.0.0.1", port=dcmprscp.port,
                           description="Film printer, 2nd floor", display_format="STANDARD\\2,2",
                           medium_type="BLUE FILM", film_destination="PROCESSOR")
    make_user("printer", ["view", "print"])
    make_user("admin", ["system_admin"])
    with browser_page() as page:
        log_in(page, live_server.url, "printer", PASSWORD)
        page.goto(f"{live_server.url}/studies/{STUDY}/")
        assert page.locator("button:has-text('Print…')").count() == 2  # the study, its one series
        screenshot(page, "print-study-page")
        page.goto(f"{live_server.url}/studies/{STUDY}/series/{SERIES}/")
        page.check(f"input[name=image][value='{STUDY}/{SERIES}.3']")
        wait_until(page, "[...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth > 0)")
        screenshot(page, "print-series-page")
        page.goto(f"{live_server.url}/")
        page.check(f"input[name=study][value='{STUDY}']")
        page.click("button[formaction='/print/select/']")
        page.wait_for_load_state("networkidle")
        screenshot(page, "print-page")
        assert page.url.endswith("/print/")
        assert "Print 12 images of 1 study" in page.inner_text("h1")
        page.fill("input[name=layout]", "STANDARD\\2,2")
        page.click("text=Preview")
        page.wait_for_load_state("networkidle")
        wait_until(page, "[...document.querySelectorAll('.sheets img')].every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator(".sheets img").count() == 3  # 12 images, 4 a sheet
        screenshot(page, "print-preview")
        page.click("button:has-text('Print 3 sheets')")
        page.wait_for_load_state("networkidle")
        job = Job.objects.get(kind=Job.Kind.PRINT)
        assert f"/jobs/{job.pk}/" in page.url and job.state == Job.State.DONE, job.message
        assert "12 images printed on 3 sheets" in page.inner_text("body")
        screenshot(page, "print-job")
    assert len(dcmprscp.stored("HG")) == 12

    with browser_page() as page:
        log_in(page, live_server.url, "admin", PASSWORD)
        page.goto(f"{live_server.url}/printers/")
        page.click("button:has-text('Verify')")
        page.wait_for_load_state("networkidle")
        assert "printer status NORMAL" in page.inner_text("body")
        screenshot(page, "printers")
        page.goto(f"{live_server.url}/printers/add/")
        screenshot(page, "printer-form")
