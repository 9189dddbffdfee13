"""Delete to the trash (issue 17): a confirmation page names what will happen; a post without
its field deletes nothing; a trashed study is hidden from pages, the API and C-FIND; System
Administration restores it or empties the trash, journaled; the schedule empties what was kept
PACS_TRASH_DAYS."""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from audit.models import Entry
from pacsone.deletion import do_empty_trash, do_trash_study, empty_expired_trash
from pacsone.models import Instance, Patient, Study
from tests.helpers import make_file, stored_files
from tests.people import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_studies(tmp_path):
    keep_uid, gone_uid = generate_uid(), generate_uid()
    make_file(tmp_path, "keep.dcm", study_uid=keep_uid, patient_id="KEEP", patient_name="ROE^JANE")
    for i in range(2):
        make_file(tmp_path, f"gone{i}.dcm", study_uid=gone_uid, patient_id="GONE", patient_name="DOE^JOHN",
                  StudyDescription="CT CHEST")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    return Study.objects.get(study_instance_uid=keep_uid), Study.objects.get(study_instance_uid=gone_uid)


def test_the_confirmation_page_names_the_study_patient_and_images(client, two_studies):
    _, gone = two_studies
    client.force_login(make_user("power", ["view", "modify"]))
    page = client.get(f"/actions/study/{gone.study_instance_uid}/delete/")
    assert page.status_code == 200
    assert "Delete study CT CHEST of DOE, John" in page.content.decode() and "2 images" in page.content.decode()
    assert Study.objects.get(pk=gone.pk).trashed_at is None


@pytest.mark.parametrize("data", [{}, {"confirm": "yes"}, {"confirm_study": "1.2.3"}])
def test_a_post_without_the_confirmation_deletes_nothing(client, two_studies, data):
    _, gone = two_studies
    client.force_login(make_user("power", ["view", "modify"]))
    response = client.post(f"/actions/study/{gone.study_instance_uid}/delete/", data)
    assert response.status_code == 200 and "Nothing was deleted" in response.content.decode()
    assert Study.objects.get(pk=gone.pk).trashed_at is None
    assert not Entry.objects.filter(action="delete").exists()


def test_a_confirmed_delete_hides_the_study_everywhere_and_keeps_its_files(client, two_studies):
    keep, gone = two_studies
    power = make_user("power", ["view", "modify"])
    client.force_login(power)
    uid = gone.study_instance_uid
    response = client.post(f"/actions/study/{uid}/delete/", {"confirm_study": uid})
    assert response.status_code == 302
    assert Study.objects.get(pk=gone.pk).trashed_by == "power"
    assert Entry.objects.filter(action="delete", study_uid=uid, detail__startswith="moved to the trash").count() == 1
    assert len(stored_files()) == 3  # nothing removed until the trash is emptied
    # Pages, the API and a second delete no longer reach it.
    assert client.get(f"/studies/{uid}/").status_code == 404
    listed = client.get("/").content.decode()
    assert "ROE, Jane" in listed and "DOE^JOHN" not in listed  # (the message above the list names it)
    api = client.get("/api/studies/").json()
    assert [row["study_instance_uid"] for row in api["results"]] == [keep.study_instance_uid]
    assert client.get(f"/api/studies/{uid}/").status_code == 404
    assert client.post(f"/actions/study/{uid}/delete/", {"confirm_study": uid}).status_code == 404


def test_only_system_administration_sees_and_restores_the_trash(client, two_studies):
    _, gone = two_studies
    power = make_user("power", ["view", "modify"])
    do_trash_study(gone, acting_user=power)
    client.force_login(power)
    assert client.get("/trash/").status_code == 403
    assert client.post(f"/trash/{gone.pk}/restore/").status_code == 403

    client.force_login(make_user("admin", ["system_admin"]))
    page = client.get("/trash/").content.decode()
    assert "DOE, John" in page and "Restore" in page
    assert client.post(f"/trash/{gone.pk}/restore/").status_code == 302
    assert Study.objects.get(pk=gone.pk).trashed_at is None
    assert Entry.objects.filter(action="modify", study_uid=gone.study_instance_uid,
                                detail="restored from the trash").count() == 1
    client.force_login(power)
    assert client.get(f"/studies/{gone.study_instance_uid}/").status_code == 200


def test_emptying_the_trash_asks_then_deletes_for_good_and_journals_each_study(client, two_studies):
    _, gone = two_studies
    do_trash_study(gone, acting_user=make_user("power", ["view", "modify"]))
    client.force_login(make_user("admin", ["system_admin"]))
    assert "Delete 1 study (2 images) for good?" in client.get("/trash/empty/").content.decode()
    client.post("/trash/empty/", {})
    assert Study.objects.filter(pk=gone.pk).exists()
    assert client.post("/trash/empty/", {"confirm_empty": "empty"}).status_code == 302
    assert not Study.objects.filter(pk=gone.pk).exists() and not Patient.objects.filter(patient_id="GONE").exists()
    assert Instance.objects.count() == 1 and len(stored_files()) == 1
    entry = Entry.objects.get(action="delete", study_uid=gone.study_instance_uid, detail__startswith="deleted for good")
    assert entry.username == "admin" and "2 images" in entry.detail


def test_the_schedule_empties_only_what_was_kept_long_enough(two_studies, settings):
    keep, gone = two_studies
    settings.PACS_TRASH_DAYS = 7
    power = make_user("power", ["view", "modify"])
    do_trash_study(gone, acting_user=power)
    do_trash_study(keep, acting_user=power)
    Study.objects.filter(pk=gone.pk).update(trashed_at=timezone.now() - datetime.timedelta(days=8))
    assert empty_expired_trash() == "1 study deleted from the trash"
    assert not Study.objects.filter(pk=gone.pk).exists() and Study.objects.filter(pk=keep.pk).exists()
    assert Entry.objects.filter(action="delete", username="system", study_uid=gone.study_instance_uid).exists()
    assert do_empty_trash(now=timezone.now() + datetime.timedelta(days=8)) == 1


@pytest.mark.django_db(transaction=True)
def test_c_find_skips_a_trashed_study(scp, tmp_path, settings):
    settings.PACS_DICOM_QUERY_POLICY = "open"
    uids = [generate_uid(), generate_uid()]
    for number, uid in enumerate(uids):
        make_file(tmp_path, f"{number}.dcm", study_uid=uid, patient_id=f"P{number}")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    do_trash_study(Study.objects.get(study_instance_uid=uids[1]), acting_user=make_user("power", ["view", "modify"]))

    ae = AE(ae_title="FINDER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", scp[1], ae_title=scp[0])
    assert assoc.is_established
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    found = [answer.StudyInstanceUID for status, answer in
             assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind) if answer is not None]
    assoc.release()
    assert found == [uids[0]]


@pytest.mark.parametrize("privileges,sees", [([], False), (["view", "modify"], False), (["system_admin"], True)])
def test_trash_for_lists_the_trash_to_system_administration_only(two_studies, privileges, sees):
    from pacsone.access import studies_for, trash_for

    _, gone = two_studies
    do_trash_study(gone, acting_user=make_user("power", ["view", "modify"]))
    user = make_user("someone", privileges)
    assert list(trash_for(user)) == ([gone] if sees else [])
    assert gone not in studies_for(user)
