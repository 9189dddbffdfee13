"""The REST API's interactive documentation at /api/docs/ (Swagger UI, served from our own static
files): it renders our schema in headless Chromium under our Content-Security-Policy (browser_page
fails on any violation) and asks nothing of any other host."""

from urllib.parse import urlparse

import pytest

from tests.browser_support import browser_page, log_in, screenshot, wait_until
from tests.people import PASSWORD, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]


def test_the_api_docs_page_lists_the_endpoints_from_our_own_files(live_server):
    make_user("scripter")
    with browser_page() as page:
        hosts = set()
        page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
        log_in(page, live_server.url, "scripter", PASSWORD)
        page.goto(f"{live_server.url}/api/docs/")
        wait_until(page, "document.querySelectorAll('.opblock').length > 10")
        text = page.inner_text("body")
        assert "PacsOne API" in text and "/api/studies/" in text and "/api/routing-rules/" in text
        screenshot(page, "api-docs")
        assert hosts == {urlparse(live_server.url).netloc}, hosts


def test_the_api_docs_page_needs_a_login(client):
    assert client.get("/api/docs/").status_code in (302, 401, 403)
