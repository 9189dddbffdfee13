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
        page.click("form button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "storage commitment" in page.inner_text("table")
        screenshot(page, "remote-aes-with-storage-commitment")
    ae.refresh_from_db()
    assert ae.requests_storage_commitment
    assert Entry.objects.filter(target="remote AE ARCHIVE2", detail__contains="storage_commitment=True").exists()
