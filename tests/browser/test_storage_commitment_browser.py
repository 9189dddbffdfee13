"""The Remote AEs page: an administrator asks a destination for storage commitment; the list
shows it; the change is journaled."""

import pytest

from audit.models import Entry
from pacsone.models import RemoteAE
from tests.browser_support import browser_page, log_in, screenshot
from tests.people import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_administrator_asks_a_destination_for_storage_commitment(live_server):
    make_user("sysadmin", ["system_admin"])
    ae = RemoteAE.objects.create(ae_title="ARCHIVE2", host="10.0.0.9", port=104, description="second archive")
    with browser_page() as page:
        log_in(page, live_server.url, "sysadmin", PASSWORD)
        page.goto(f"{live_server.url}/aes/{ae.pk}/")
        page.check("#id_requests_storage_commitment")
        screenshot(page, "remote-ae-request-storage-commitment")
        page.click("button:has-text('Save')")
        page.wait_for_load_state("networkidle")
        assert "storage commitment" in page.inner_text("table")
        screenshot(page, "remote-aes-with-storage-commitment")
    ae.refresh_from_db()
    assert ae.requests_storage_commitment
    assert Entry.objects.filter(target="remote AE ARCHIVE2", detail__contains="storage_commitment=True").exists()


def test_the_job_page_lists_an_instance_the_destination_failed_to_commit(live_server, tmp_path, settings):
    from routing.models import Job, RoutingRule
    from tests.routing.archive import store_study
    from tests.routing.peers import CommitmentDestination

    settings.PACS_ROUTING_QUIET_SECONDS = 0
    study_uid = "1.2.826.0.1.3680043.10.95"
    destination = CommitmentDestination(report_on="same", fail=(f"{study_uid}.1.2",))
    try:
        rule = RoutingRule.objects.create(name="to-archive", match_keyword="PatientID", match_pattern="*")
        rule.destinations.set([destination.register()])
        store_study(tmp_path, study_uid, 3)
    finally:
        destination.stop()
    job = Job.objects.get(kind="route")
    make_user("sysadmin", ["system_admin", "view"])
    with browser_page() as page:
        log_in(page, live_server.url, "sysadmin", PASSWORD)
        page.goto(f"{live_server.url}/jobs/{job.pk}/")
        text = page.inner_text("#commitment")
        assert "Commitment failed: 1" in text and f"{study_uid}.1.2" in text
        screenshot(page, "job-storage-commitment-failures")
