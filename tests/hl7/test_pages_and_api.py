"""The HL7 pages and REST endpoints (System Administration), re-processing a failed message,
undoing a merge from the page, and `manage.py hl7dest`."""

import pytest
from django.core.management import CommandError, call_command

from audit.models import Entry
from hl7.inbound import handle
from hl7.models import Destination, Message, PatientMerge
from pacsone.models import Patient, Study
from tests.people import make_study, make_user

from .messages import adt_a08, adt_a40, orm_o01, oru_r01


@pytest.fixture
def admin(db):
    return make_user("admin", ["system_admin", "view", "modify"])


def test_the_pages_need_system_administration(client, db):
    client.force_login(make_user("viewer", ["view"]))
    for url in ("/hl7/messages/", "/hl7/destinations/", "/hl7/worklist/", "/hl7/merges/"):
        assert client.get(url).status_code == 403, url


def test_the_message_log_searches_and_shows_the_raw_message_and_its_ack(client, admin):
    handle(adt_a08("P1", "SOUGHT^NAME", control_id="FIND-ME").encode(), "10.0.0.9")
    handle(adt_a08("P2", "OTHER^NAME", control_id="NOT-ME").encode(), "10.0.0.9")
    client.force_login(admin)
    page = client.get("/hl7/messages/", {"q": "SOUGHT"}).content.decode()
    assert "FIND-ME" in page and "NOT-ME" not in page
    message = Message.objects.get(control_id="FIND-ME")
    detail = client.get(f"/hl7/messages/{message.pk}/").content.decode()
    assert "PID|1||P1^^^HOSP^MR||SOUGHT^NAME" in detail and "MSA|AA|FIND-ME" in detail


def test_a_failed_message_is_reprocessed_from_the_page(client, admin):
    handle(adt_a40("KEEP", "LATER", control_id="EARLY").encode(), "10.0.0.9")
    message = Message.objects.get(control_id="EARLY")
    assert message.status == Message.Status.FAILED
    make_study("1.2.3.1", "LATER")
    client.force_login(admin)
    response = client.post(f"/hl7/messages/{message.pk}/reprocess/")
    assert response.status_code == 302
    message.refresh_from_db()
    assert (message.status, message.reprocessed) == (Message.Status.APPLIED, 1)
    assert Study.objects.get().patient.patient_id == "KEEP"
    assert Entry.objects.filter(username="admin", target=f"HL7 message {message.pk} reprocessed").exists()


def test_a_merge_is_undone_from_the_page_by_someone_who_sees_its_studies(client, admin):
    make_study("1.2.3.2", "DUP")
    Patient.objects.create(patient_id="KEEP")
    handle(adt_a40("KEEP", "DUP").encode(), "10.0.0.9")
    merge = PatientMerge.objects.get()
    client.force_login(make_user("sysonly", ["system_admin"]))
    assert client.post(f"/hl7/merges/{merge.pk}/undo/").status_code == 403
    client.force_login(admin)
    # The Undo link and a POST without the confirmation say what will happen and change nothing.
    for asked in (client.get(f"/hl7/merges/{merge.pk}/undo/"), client.post(f"/hl7/merges/{merge.pk}/undo/")):
        assert asked.status_code == 200 and "Undo the merge of patient DUP into KEEP: move 1 study back" in asked.content.decode()
    assert Study.objects.get().patient.patient_id == "KEEP"
    assert client.post(f"/hl7/merges/{merge.pk}/undo/", {"confirmed": "yes"}).status_code == 302
    assert Study.objects.get().patient.patient_id == "DUP"
    assert Entry.objects.filter(username="admin", target=f"unmerge {merge.pk}").exists()


def test_destinations_are_added_and_removed_on_the_page(client, admin):
    client.force_login(admin)
    response = client.post("/hl7/destinations/", {"name": "RIS", "host": "ris.example", "port": "2575",
                                                  "events": ["received", "mpps"]})
    assert response.status_code == 302
    destination = Destination.objects.get()
    assert destination.events == "received,mpps"
    client.post(f"/hl7/destinations/{destination.pk}/remove/")
    assert not Destination.objects.exists()
    assert Entry.objects.filter(action="configuration", target="HL7 destination RIS").count() == 2


def test_the_api_lists_messages_destinations_worklist_and_reports(client, admin):
    handle(orm_o01("PL1", "ACC1").encode(), "10.0.0.9")
    make_study("1.2.3.3", "P1", accession="ACC5")
    handle(oru_r01("ACC5", ["Impression: no acute findings.", "Signed."]).encode(), "10.0.0.9")
    client.force_login(admin)
    messages = client.get("/api/hl7/messages/", {"type": "ORM"}).json()
    assert [m["control_id"] for m in messages["results"]] == ["ORM-1"]
    worklist = client.get("/api/worklist/", {"modality": "CT"}).json()
    assert [s["accession_number"] for s in worklist["results"]] == ["ACC1"]
    created = client.post("/api/hl7/destinations/", {"name": "RIS", "host": "ris", "port": 2575, "events": "read"},
                          content_type="application/json")
    assert created.status_code == 201 and created.json()["events"] == "read"
    bad = client.post("/api/hl7/destinations/", {"name": "X", "host": "ris", "port": 2575, "events": "lunch"},
                      content_type="application/json")
    assert bad.status_code == 400 and "lunch" in bad.json()["detail"]
    reports = client.get("/api/hl7/reports/", {"q": "acute"}).json()
    assert [r["accession_number"] for r in reports["results"]] == ["ACC5"]
    assert "no acute findings" in reports["results"][0]["text"]


def test_reports_show_only_on_studies_the_user_may_see(client, db):
    make_study("1.2.3.4", "P1", accession="ACC6")
    handle(oru_r01("ACC6", ["Private finding."]).encode(), "10.0.0.9")
    client.force_login(make_user("nobody"))
    assert client.get("/api/hl7/reports/").json()["results"] == []


def test_the_api_needs_system_administration_for_the_log(client, db):
    client.force_login(make_user("viewer", ["view"]))
    assert client.get("/api/hl7/messages/").status_code == 403
    assert client.get("/api/worklist/").status_code == 403


def test_hl7dest_adds_lists_and_removes(db, capsys):
    call_command("hl7dest", "add", "RIS", "ris.example", "2575", "--events", "received,read,mpps")
    call_command("hl7dest", "list")
    assert "RIS\tris.example:2575\treceived,read,mpps" in capsys.readouterr().out
    with pytest.raises(CommandError, match="exists already"):
        call_command("hl7dest", "add", "RIS", "ris.example", "2575")
    with pytest.raises(CommandError, match="unknown event"):
        call_command("hl7dest", "add", "OTHER", "ris.example", "2575", "--events", "lunch")
    with pytest.raises(CommandError, match="port"):
        call_command("hl7dest", "add", "OTHER", "ris.example", "99999")
    call_command("hl7dest", "remove", "RIS")
    assert not Destination.objects.exists()
    with pytest.raises(CommandError, match="no HL7 destination"):
        call_command("hl7dest", "remove", "RIS")
    assert Entry.objects.filter(username="manage.py hl7dest", target="HL7 destination RIS").count() == 2
