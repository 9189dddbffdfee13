"""In headless Chromium: the statistics page draws its charts (the vendored Chart.js under the
page's Content-Security-Policy) for the last 30 days and a chosen range shows its errors beside
the fields; the e-mail settings page sends the test e-mail to a real SMTP server. Screenshots go
to test-artifacts/."""

import datetime
import random

import pytest
from django.utils import timezone

from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.people import PASSWORD, make_user
from tests.smtp_server import configure, smtp_server
from tests.stats_data import received

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]

CHARTS = ("chart-timeline", "chart-modality", "chart-hours", "chart-source-ae", "chart-storage")


@pytest.fixture
def month_of_studies():
    rng = random.Random(16)
    now = timezone.now()
    for day in range(30):
        for _ in range(rng.randrange(1, 6)):
            when = now - datetime.timedelta(days=day, hours=rng.randrange(0, 10))
            received(when, modality=rng.choice(["CT", "CT", "MR", "CR", "US"]), ae=rng.choice(["CT_ROOM1", "MR_ROOM2", "CR_WARD"]),
                     institution=rng.choice(["GENERAL HOSPITAL", "CITY CLINIC"]),
                     referring=rng.choice(["SMITH^JANE", "DOE^JOHN", "ROE^RICHARD"]),
                     instances=rng.randrange(20, 300), size=520_000)


def test_the_statistics_page_draws_its_charts(live_server, month_of_studies):
    make_user("watcher", ["monitor"])
    with browser_page(width=1280, height=1000) as page:
        log_in(page, live_server.url, "watcher", PASSWORD)
        page.goto(f"{live_server.url}/statistics/")
        for chart in CHARTS:  # Chart.js registered a chart on every canvas
            wait_until(page, f"window.Chart && Chart.getChart(document.getElementById('{chart}')) !== undefined")
        assert page.is_visible("#mail-warning")
        assert page.evaluate("Chart.getChart(document.getElementById('chart-timeline')).data.labels.length") == 30
        screenshot(page, "statistics-page")
        page.select_option("#id_preset", "")
        page.fill("#id_date_from", "2026-11-30")
        page.fill("#id_date_to", "2026-11-01")
        page.click("#period button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "The end is before the start." in page.inner_text("#period")
        screenshot(page, "statistics-bad-range")


def test_the_mail_settings_page_sends_the_test_email(live_server):
    make_user("admin", ["system_admin"])
    with smtp_server() as (mailbox, port), browser_page(width=1000, height=1100) as page:
        configure(port, password="never-shown-1")
        log_in(page, live_server.url, "admin", PASSWORD)
        page.goto(f"{live_server.url}/journal/mail/")
        assert page.input_value("#id_password") == ""
        page.click("button:has-text('Send a test e-mail')")
        page.wait_for_load_state("networkidle")
        assert "The server answered: 250 2.0.0 Ok" in page.inner_text(".messages")
        assert "never-shown-1" not in page.content()
        screenshot(page, "mail-settings")
    assert mailbox.messages[0]["Subject"] == "PacsOne test e-mail"
