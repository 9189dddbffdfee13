"""In headless Chromium: a referring physician logs in and sees exactly the studies the rules
allow; a guessed URL of another study is 404; after making a patient public, she sees it."""

import pytest

from pacsone.visibility import set_patient_public
from tests.browser_support import browser_page, log_in, screenshot
from tests.people import PASSWORD, make_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.peers]


def test_a_physician_sees_exactly_her_studies_in_the_browser(live_server):
    world = make_world()
    with browser_page() as page:
        log_in(page, live_server.url, "jane", PASSWORD)
        text = page.inner_text("main")
        screenshot(page, "physician-study-list")
        assert "PUB1" in text and "OWN1" in text
        assert "OTH1" not in text and "OTHER^PAT" not in text

        other_uid = world.studies["other"].study_instance_uid
        response = page.goto(f"{live_server.url}/notes/{other_uid}/")
        assert response.status == 404
        api = page.goto(f"{live_server.url}/api/studies/?format=json")
        assert api.status == 200
        uids = {s["study_instance_uid"] for s in api.json()["results"]}
        assert uids == {world.studies["public"].study_instance_uid, world.studies["own"].study_instance_uid}

        set_patient_public(world.studies["other"].patient, True)
        page.goto(f"{live_server.url}/")
        assert "OTH1" in page.inner_text("main")
