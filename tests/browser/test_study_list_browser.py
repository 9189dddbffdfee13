"""In headless Chromium (issue 17): `doe` finds DOE^JOHN shown as "DOE, John"; Today and the
modality chips filter the list; a wrong URL shows a styled 404 with the menu; the list, a study,
the 404 and the trash fit a phone (390 px), a tablet (768 px) and a desktop (1440 px), the
phone's menu folding behind a button. Screenshots go to test-artifacts/."""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.browser_support import browser_page, log_in, screenshot
from tests.helpers import make_file
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

WIDTHS = (390, 768, 1440)


@pytest.fixture
def archive(tmp_path):
    today = timezone.localdate()
    rows = [
        ("1.2.826.17.1", "DOE^JOHN", "MRN1001", "CT", today, "CT CHEST WITH CONTRAST, PULMONARY EMBOLISM PROTOCOL"),
        ("1.2.826.17.2", "MÜLLER^HANS", "MRN1002", "MR", today - datetime.timedelta(days=1), "MR KNEE"),
        ("1.2.826.17.3", "ROE^JANE^Q^DR^MD", "MRN1003", "US", today - datetime.timedelta(days=12), "US ABDOMEN"),
    ]
    for uid, name, patient_id, modality, day, description in rows:
        make_file(tmp_path, f"{patient_id}.dcm", study_uid=uid, patient_name=name, patient_id=patient_id,
                  Modality=modality, StudyDate=day.strftime("%Y%m%d"), StudyDescription=description,
                  PatientBirthDate="19700101", PatientSex="F", AccessionNumber=f"A{patient_id}",
                  ReferringPhysicianName="SMITH^ANNA^^DR")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())


def names(page) -> list[str]:
    return page.eval_on_selector_all("table.studies tbody td:nth-child(3) a", "links => links.map(a => a.textContent)")


def test_search_chips_and_layout_at_three_widths(live_server, archive):
    make_user("rad", ["view", "modify", "mark_study", "export"], first_name="Rita", last_name="Radiologist")
    with browser_page(width=1440) as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        page.fill("input[name=q]", "doe")
        page.press("input[name=q]", "Enter")
        page.wait_for_load_state("networkidle")
        assert names(page) == ["DOE, John"]
        assert page.get_attribute("table.studies .pn", "title") == "DOE^JOHN"

        page.goto(live_server.url + "/")
        page.click(".chips >> text=Today")
        page.wait_for_load_state("networkidle")
        assert names(page) == ["DOE, John"]
        page.click(".chips >> text=Today")  # a second click takes the chip off
        page.click(".chips >> text=MR")
        page.click(".chips >> text=US")
        page.wait_for_load_state("networkidle")
        assert sorted(names(page)) == ["Dr ROE, Jane Q, MD", "MÜLLER, Hans"]

        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(live_server.url + "/")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"list wider than {width}"
            screenshot(page, f"study-list-{width}")
            page.goto(f"{live_server.url}/studies/1.2.826.17.1/")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"study wider than {width}"
            screenshot(page, f"study-{width}")
            response = page.goto(f"{live_server.url}/no/such/page/")
            assert response.status == 404 and "Page not found" in page.inner_text("h1")
            screenshot(page, f"error-404-{width}")

        # On a phone the menu folds behind a button, and opens to the whole of it.
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(live_server.url + "/")
        assert not page.is_visible("header nav >> text=Studies")
        page.click("text=Menu")
        assert page.is_visible("header nav >> text=Studies") and page.is_visible("text=Log out")
        screenshot(page, "menu-open-390")


def test_the_administrators_menu_fits_one_line_and_folds_its_pages(live_server, archive):
    make_user("root")
    with browser_page(width=1280) as page:
        log_in(page, live_server.url, "root", PASSWORD)
        header = page.locator("header")
        assert header.bounding_box()["height"] < 60, "the menu bar wraps at 1280 px"
        assert not page.is_visible("header nav >> text=Remote AEs")
        page.click("header nav >> text=Administration")
        for name in ("Remote AEs", "Routing", "Storage", "Printers", "HL7", "Journal", "E-mail", "Trash", "Users", "Groups"):
            assert page.is_visible(f"header nav >> text={name}"), name
        screenshot(page, "menu-administration-1280")
        page.click("header nav >> text=Journal")
        assert page.url.endswith("/journal/")
        # On a phone the group opens inside the folded menu.
        page.set_viewport_size({"width": 390, "height": 800})
        page.click("text=Menu")
        page.click("header nav >> text=Administration")
        assert page.is_visible("header nav >> text=Trash")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "menu-administration-390")
    # Someone without System Administration sees no such menu.
    make_user("rad", ["view", "monitor"])
    with browser_page(width=1280) as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        assert page.is_visible("header nav >> text=Statistics")
        assert page.locator("header nav >> text=Administration").count() == 0


def test_invalid_input_is_shown_next_to_its_field(live_server, archive):
    make_user("rad", ["view"])
    with browser_page(width=768) as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        page.goto(f"{live_server.url}/?date_from=2026-11-30&date_to=2026-11-01")
        assert page.is_visible("text=The end date is before the start date.")
        assert "found" not in page.inner_text("h1") and page.is_visible("text=No search was run")
        screenshot(page, "study-list-invalid-768")


def test_at_a_laptop_width_the_whole_row_shows_without_scrolling(live_server, archive):
    """1280 px: every column and the unread badge are in view (the badge once sat in a last
    column that the table's scrolling cut off at the card's edge)."""
    make_user("rad", ["view"])
    with browser_page(width=1280) as page:
        log_in(page, live_server.url, "rad", PASSWORD)
        page.goto(live_server.url + "/")
        screenshot(page, "study-list-1280")
        scroll_width, client_width = page.eval_on_selector(".scroll", "s => [s.scrollWidth, s.clientWidth]")
        assert scroll_width <= client_width
        badges = page.locator("table.studies tbody .badge", has_text="unread")
        assert badges.count() == 3 and all(badges.nth(i).is_visible() for i in range(3))
