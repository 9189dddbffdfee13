"""The routing table's pages and /api/routing-rules/ (System Administration): add, change, test
this rule (only studies the administrator may see), remove; every change journaled. The Job
Status page's filters, and retry/cancel through the page and the API."""

import pytest

from audit.models import Entry
from pacsone.models import RemoteAE, Study
from routing.models import Job, RoutingRule
from tests.people import make_user
from tests.routing.archive import store_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):
    client.force_login(make_user("admin", ["system_admin"]))
    return client


@pytest.fixture
def storescp():
    return RemoteAE.objects.create(ae_title="STORESCP", host="127.0.0.1", port=104)


FORM = {"name": "test-patients", "enabled": "on", "priority": "10", "match_by": "attribute",
        "match_keyword": "PatientID", "match_pattern": "TEST*", "schedule": "window", "window_from": "22:00",
        "window_to": "06:00", "max_attempts": "3"}


def test_an_administrator_adds_a_rule_from_the_page_and_the_change_is_journaled(admin, storescp):
    response = admin.post("/routing/add/", {**FORM, "destinations": [storescp.pk]})
    assert response.status_code == 302 and response["Location"] == "/routing/"
    rule = RoutingRule.objects.get(name="test-patients")
    assert rule.schedule_text() == "between 22:00 and 06:00" and list(rule.destinations.all()) == [storescp]
    entry = Entry.objects.get(target="routing rule test-patients added")
    assert entry.username == "admin" and "PatientID = TEST* -> STORESCP" in entry.detail
    page = admin.get("/routing/").content.decode()
    assert "test-patients" in page and "between 22:00 and 06:00" in page
    admin.post(f"/routing/{rule.pk}/", {**FORM, "match_pattern": "DEMO*", "destinations": [storescp.pk]})
    assert RoutingRule.objects.get(pk=rule.pk).match_pattern == "DEMO*"
    assert Entry.objects.filter(target="routing rule test-patients changed").count() == 1


@pytest.mark.parametrize("change, message", [
    ({"match_keyword": "NotAKeyword"}, "is not a DICOM attribute keyword"),
    ({"match_pattern": ""}, "give a pattern for PatientID"),
    ({"window_to": ""}, "a window needs its start and end times"),
    ({"match_by": "ae", "source_ae_pattern": ""}, "match either the source AE title or one attribute"),
])
def test_a_rule_that_cannot_work_is_refused_with_the_reason(admin, storescp, change, message):
    response = admin.post("/routing/add/", {**FORM, "destinations": [storescp.pk], **change})
    assert response.status_code == 200 and message in response.content.decode()
    assert not RoutingRule.objects.exists()


def test_test_this_rule_lists_only_the_recent_studies_it_matches_that_the_admin_may_see(admin, storescp, tmp_path):
    store_study(tmp_path, "1.2.826.11.1", 2, patient_id="TEST1")
    store_study(tmp_path, "1.2.826.11.2", 1, patient_id="TEST2")
    store_study(tmp_path, "1.2.826.11.3", 1, patient_id="REAL3")
    Study.objects.filter(study_instance_uid__in=["1.2.826.11.1", "1.2.826.11.3"]).update(public=True)
    rule = RoutingRule.objects.create(name="t", match_keyword="PatientID", match_pattern="TEST*")
    rule.destinations.set([storescp])
    page = admin.get(f"/routing/{rule.pk}/test").content.decode()
    assert "1.2.826.11.1" in page and "TEST1" in page
    assert "TEST2" not in page  # private: this administrator has no View
    assert "REAL3" not in page
    assert Entry.objects.filter(action="search", target="routing rule test t").count() == 1


def test_the_api_creates_changes_and_removes_rules_with_the_same_checks(admin, storescp):
    body = {"name": "api", "source_ae_pattern": "CT*", "destinations": ["STORESCP"], "schedule": "daily",
            "daily_at": "02:00"}
    created = admin.post("/api/routing-rules/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["destinations"] == ["STORESCP"] and created.json()["max_attempts"] == 3
    pk = created.json()["id"]
    bad = admin.patch(f"/api/routing-rules/{pk}/", {"source_ae_pattern": "", "match_keyword": "Nope"},
                      content_type="application/json")
    assert bad.status_code == 400 and "match_keyword" not in bad.json() and "detail" in bad.json()
    unknown = admin.post("/api/routing-rules/", {**body, "name": "x", "destinations": ["NOBODY"]},
                         content_type="application/json")
    assert unknown.status_code == 400
    changed = admin.patch(f"/api/routing-rules/{pk}/", {"enabled": False}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert admin.delete(f"/api/routing-rules/{pk}/").status_code == 204
    assert [e.target for e in Entry.objects.filter(action="configuration").order_by("id")] == [
        "routing rule api added", "routing rule api changed", "routing rule api removed"]


def test_the_job_list_filters_and_a_user_retries_and_cancels_only_their_own(client):
    owner, other = make_user("owner"), make_user("other")
    mine = Job.objects.create(kind="export", title="Export A", owner=owner, state="failed", attempts=3,
                              function="tests.routing.test_job_layer.counts", arguments=[2], last_error="disk full")
    Job.objects.create(kind="import", title="Import B", owner=owner, state="done", function="x")
    theirs = Job.objects.create(kind="export", title="Export C", owner=other, state="queued", function="x")
    client.force_login(owner)
    page = client.get("/jobs/?state=failed").content.decode()
    assert "Export A" in page and "Import B" not in page and "disk full" in page
    assert "Import B" in client.get("/jobs/?kind=import").content.decode()
    assert "Export C" not in client.get("/jobs/").content.decode()
    assert client.post("/jobs/bulk", {"job": [theirs.pk], "action": "cancel"}).status_code == 404
    client.post(f"/jobs/{mine.pk}/cancel")  # failed: nothing to cancel
    assert Job.objects.get(pk=mine.pk).state == "failed"
    retried = client.post(f"/api/jobs/{mine.pk}/retry/")
    assert retried.status_code == 200 and retried.json()["state"] == "done"  # due at once: run (PACS_TASKS_SYNC)
    assert retried.json()["attempts"] == 1 and retried.json()["done"] == 2
    assert Entry.objects.filter(target=f"job {mine.pk} retried", username="owner").count() == 1
    assert client.post(f"/api/jobs/{theirs.pk}/cancel/").status_code == 404
    assert Job.objects.get(pk=theirs.pk).state == "queued"
