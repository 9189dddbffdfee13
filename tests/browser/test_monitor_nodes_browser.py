"""In headless Chromium: the Monitor page lists every node of the archive with its processes,
a silent node marked. Screenshot in test-artifacts/monitor-nodes.png."""

import datetime

import pytest
from django.utils import timezone

from pacsone.models import Node
from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]


def processes(base_pid: int) -> list[dict]:
    names = ["web", "dicom:PACSONE:11112#1", "dicom:PACSONE:11112#2", "hl7:2575", "tasks"]
    return [{"name": name, "pid": base_pid + n, "running": True, "started": 0, "restarts": 0, "last_exit": None}
            for n, name in enumerate(names)]


def test_the_monitor_shows_both_nodes_and_marks_the_silent_one(live_server, settings):
    now = timezone.now()
    Node.objects.create(name="pacs1", host="pacs1.example.org", started_at=now, last_seen=now,
                        processes=processes(4100))
    Node.objects.create(name="pacs2", host="pacs2.example.org", started_at=now,
                        last_seen=now - datetime.timedelta(minutes=3), processes=processes(5200))
    settings.PACS_NODE_NAME = "pacs1"
    make_user("watcher", ["monitor"])
    with browser_page() as page:
        log_in(page, live_server.url, "watcher", PASSWORD)
        page.goto(f"{live_server.url}/monitor/")
        wait_until(page, "document.querySelectorAll('#nodes tbody tr').length === 2")
        rows = page.locator("#nodes tbody tr")
        assert "pacs1 (this node)" in rows.nth(0).inner_text() and "up" in rows.nth(0).inner_text()
        assert "silent" in rows.nth(1).inner_text() and "dicom:PACSONE:11112#1 pid 5201 (stopped)" in rows.nth(1).inner_text()
        screenshot(page, "monitor-nodes")
