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


def click_on_the_study_page(page, live_server, label: str) -> None:
    """As a power user; any dialog a script might open is dismissed: it must not count as a
    confirmation."""
    page.on("dialog", lambda dialog: dialog.dismiss())
    log_in(page, live_server.url, "power", PASSWORD)
    page.goto(f"{live_server.url}/studies/{STUDY}/")
    page.click(f"text={label}")
    page.wait_for_load_state("networkidle")


def test_a_click_on_delete_without_confirming_deletes_nothing(live_server, study):
    make_user("power", ["view", "modify"])
    with browser_page() as page:
        click_on_the_study_page(page, live_server, "Delete…")
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
        page.click("header >> text=Administration")  # the administration pages are folded into one menu
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


def test_an_edit_says_what_it_will_rewrite_and_runs_only_when_confirmed(live_server, study):
    from routing.models import Job

    make_user("power", ["view", "modify"])
    with browser_page() as page:
        click_on_the_study_page(page, live_server, "Edit")
        page.fill("#id_patient_name", "DOE^JANE")
        page.fill("#id_study_description", "CT THORAX")
        page.click("text=Review changes…")
        page.wait_for_load_state("networkidle")
        text = page.inner_text("main")
        assert "Confirm the edit" in text and "Rewrite 3 images in 1 study of DOE, John" in text
        assert "DOE, Jane" in page.inner_text(".edit-plan") and "CT THORAX" in page.inner_text(".edit-plan")
        assert not Job.objects.exists()  # one click on Save ran nothing
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            screenshot(page, f"confirm-edit-{width}")
        page.click("text=Back to the form")
        page.wait_for_load_state("networkidle")
        assert page.input_value("#id_patient_name") == "DOE^JANE" and not Job.objects.exists()
        page.click("text=Review changes…")
        page.wait_for_load_state("networkidle")
        page.click("button:has-text('Rewrite 3 images')")
        page.wait_for_load_state("networkidle")
        job = Job.objects.get()
        assert job.kind == Job.Kind.EDIT and f"/jobs/{job.pk}/" in page.url
        # The job page names the patient and the study, not only the job's title.
        assert "CT" in page.inner_text("main") and ("DOE, John" in page.inner_text("main") or "DOE, Jane" in page.inner_text("main"))
