"""In headless Chromium (issue 17): a click on Delete deletes nothing until the confirmation
page's own button is pressed (also with scripts broken or a dialog dismissed); a confirmed
delete goes to the trash, from which System Administration restores it. Screenshots of the
confirmation and the trash at phone, tablet and desktop widths go to test-artifacts/."""

from io import StringIO

import pytest
from django.core.management import call_command

from pacsone.models import Study
from tests.browser_support import browser_page, log_in, screenshot
from tests.helpers import make_file
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

STUDY = "1.2.826.9.17.1"
WIDTHS = (390, 768, 1440)


@pytest.fixture
def study(tmp_path):
    for number in range(3):
        make_file(tmp_path, f"{number}.dcm", study_uid=STUDY, patient_id="MRN17", patient_name="DOE^JOHN",
                  StudyDescription="CT CHEST")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    return Study.objects.get(study_instance_uid=STUDY)


def test_a_click_on_delete_without_confirming_deletes_nothing(live_server, study):
    make_user("power", ["view", "modify"])
    with browser_page() as page:
        # Any dialog a script might open is dismissed: it must not count as a confirmation.
        page.on("dialog", lambda dialog: dialog.dismiss())
        log_in(page, live_server.url, "power", PASSWORD)
        page.goto(f"{live_server.url}/studies/{STUDY}/")
        page.click("text=Delete…")
        page.wait_for_load_state("networkidle")
        assert "Delete study CT CHEST of DOE, John" in page.inner_text("h1")
        assert "3 images" in page.inner_text("h1")
        study.refresh_from_db()
        assert study.trashed_at is None
        page.click("text=Cancel, keep it")
        page.wait_for_load_state("networkidle")
        assert "CT CHEST" in page.inner_text("h1")
        study.refresh_from_db()
        assert study.trashed_at is None


def test_with_scripts_off_delete_still_asks_first(live_server, study):
    make_user("power", ["view", "modify"])
    with browser_page() as page:
        page.context.set_extra_http_headers({})
        log_in(page, live_server.url, "power", PASSWORD)
        page.route("**/*.js", lambda route: route.abort())  # a broken script must not bypass the question
        page.goto(f"{live_server.url}/studies/{STUDY}/")
        page.click("text=Delete…")
        page.wait_for_load_state("networkidle")
        study.refresh_from_db()
        assert study.trashed_at is None and "Delete study" in page.inner_text("h1")


def test_a_confirmed_delete_goes_to_the_trash_and_is_restored(live_server, study):
    make_user("power", ["view", "modify"])
    make_user("admin", ["system_admin"])
    with browser_page() as page:
        log_in(page, live_server.url, "power", PASSWORD)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(f"{live_server.url}/actions/study/{STUDY}/delete/")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            screenshot(page, f"confirm-delete-{width}")
        page.click("#confirm-delete")
        page.wait_for_load_state("networkidle")
        assert "in the trash for 7 days" in page.inner_text(".messages")
        study.refresh_from_db()
        assert study.trashed_at is not None
        assert page.goto(f"{live_server.url}/studies/{STUDY}/").status == 404

    with browser_page() as page:
        log_in(page, live_server.url, "admin", PASSWORD)
        page.click("header >> text=Trash")
        page.wait_for_load_state("networkidle")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            screenshot(page, f"trash-{width}")
        assert "DOE, John" in page.inner_text("table")
        page.click("text=Restore")
        page.wait_for_load_state("networkidle")
        assert "Restored study CT CHEST of DOE, John" in page.inner_text(".messages")
        study.refresh_from_db()
        assert study.trashed_at is None
