"""Study actions: mark, public/private (with the cascade), delete; privileges, visibility,
journal."""

from io import StringIO

import pytest
from django.core.management import call_command
from pydicom.uid import generate_uid

from audit.models import Entry
from pacsone.models import Patient, Study
from tests.helpers import make_file
from tests.people import make_user, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def post(client, user, url, data=None):
    client.force_login(user)
    return client.post(url, data or {})


@pytest.mark.parametrize("privileges,study,expected", [
    ([], "own", 403), (["mark_study"], "own", 302), (["mark_study"], "other", 404), (["mark_study", "view"], "other", 302),
])
def test_mark_read(client, world, privileges, study, expected):
    user = make_user("marker", privileges, first_name="Jane", last_name="Smith")
    uid = world.studies[study].study_instance_uid
    assert post(client, user, f"/actions/study/{uid}/mark/", {"read": "1"}).status_code == expected
    assert Study.objects.get(study_instance_uid=uid).read is (expected == 302)
    if expected == 302:
        post(client, user, f"/actions/study/{uid}/mark/", {"read": "0"})
        assert Study.objects.get(study_instance_uid=uid).read is False
        assert Entry.objects.filter(action="mark", study_uid=uid).count() == 2


def test_get_is_not_allowed(client, world):
    client.force_login(world.users["root"])
    assert client.get(f"/actions/study/{world.studies['own'].study_instance_uid}/mark/").status_code == 405


def test_public_private_needs_modify_and_cascades(client, world):
    uid = world.studies["other"].study_instance_uid
    assert post(client, world.users["physician"], f"/actions/study/{uid}/public/", {"public": "1"}).status_code == 403
    assert post(client, world.users["power"], f"/actions/study/{uid}/public/", {"public": "1"}).status_code == 302
    assert Study.objects.get(study_instance_uid=uid).public and Patient.objects.get(patient_id="OTH1").public
    patient = Patient.objects.get(patient_id="OTH1")
    assert post(client, world.users["power"], f"/actions/patient/{patient.pk}/public/", {"public": "0"}).status_code == 302
    assert not Study.objects.get(study_instance_uid=uid).public
    assert Entry.objects.filter(action="modify", patient_id="OTH1").count() == 2


def test_an_open_redirect_is_not_followed(client, world):
    uid = world.studies["own"].study_instance_uid
    response = post(client, world.users["power"], f"/actions/study/{uid}/mark/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_delete_needs_modify_and_a_visible_study(client, tmp_path):
    """(What a delete does, the trash: test_trash.py.)"""
    keep_uid = generate_uid()
    make_file(tmp_path, "keep.dcm", study_uid=keep_uid, patient_id="KEEP")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    confirmed = {"confirm_study": keep_uid}
    # A viewer without Modify cannot delete; someone who cannot see it gets 404.
    assert post(client, make_user("viewer", ["view"]), f"/actions/study/{keep_uid}/delete/", confirmed).status_code == 403
    assert post(client, make_user("blind", ["modify"]), f"/actions/study/{keep_uid}/delete/", confirmed).status_code == 404
    assert Study.objects.get(study_instance_uid=keep_uid).trashed_at is None
