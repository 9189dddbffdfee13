"""Issue 5's acceptance, step by step as a new user would go: root creates Jane Smith; she sees
the private study that names her and not another (by URL either); Modify makes a patient
public; the API answers as the pages do; idle logout; the journal shows it all and
`verifyjournal` catches a hand-edited row."""

import datetime
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from audit.models import Entry
from tests.people import PASSWORD, make_study, make_user

pytestmark = pytest.mark.django_db

JANE_PASSWORD = "Jane-first-pass-88"
JANE_NEW_PASSWORD = "Jane-own-pass-99"


def login(client, username, password):
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:500]


def test_issue_5_acceptance(capsys):
    make_user("root")
    make_user("pat", ["view", "modify"], first_name="Pat", last_name="Power")
    hers = make_study("1.2.840.99.1", "P-HERS", referring="Smith^Jane", patient_name="HERS^PATIENT")
    other = make_study("1.2.840.99.2", "P-OTHER", referring="Jones^Bob", patient_name="OTHER^PATIENT")

    root = Client()
    login(root, "root", PASSWORD)
    created = root.post("/accounts/users/new/", {
        "username": "jane", "first_name": "Jane", "last_name": "Smith", "is_active": "on",
        "password1": JANE_PASSWORD, "password2": JANE_PASSWORD, "must_change_password": "on",
    })
    assert created.status_code == 302

    jane = Client()
    login(jane, "jane", JANE_PASSWORD)
    assert jane.get("/")["Location"].startswith("/accounts/password/")  # set by root: change it first
    jane.post("/accounts/password/", {"old_password": JANE_PASSWORD, "new_password1": JANE_NEW_PASSWORD,
                                      "new_password2": JANE_NEW_PASSWORD})

    def api_uids(client):
        return {s["study_instance_uid"] for s in client.get("/api/studies/").json()["results"]}

    assert api_uids(jane) == {hers.study_instance_uid}
    assert jane.get(f"/api/studies/{other.study_instance_uid}/").status_code == 404
    assert jane.get(f"/notes/{other.study_instance_uid}/").status_code == 404
    assert jane.get(f"/notes/{hers.study_instance_uid}/").status_code == 200

    token = jane.post("/api/auth/token/", {"username": "jane", "password": JANE_NEW_PASSWORD}).json()["token"]
    by_token = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_uids(by_token) == {hers.study_instance_uid}

    pat = Client()
    login(pat, "pat", PASSWORD)
    made_public = pat.patch(f"/api/patients/{other.patient.pk}/", {"public": True}, content_type="application/json")
    assert made_public.status_code == 200
    assert api_uids(jane) == {hers.study_instance_uid, other.study_instance_uid}

    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + datetime.timedelta(minutes=11)):
        assert jane.get("/")["Location"].startswith("/accounts/login/")

    journal = list(Entry.objects.order_by("id").values_list("username", "action", "target"))
    assert ("root", "user_admin", "created user jane") in journal
    assert ("jane", "login", "") in journal and ("jane", "password_change", "jane") in journal
    assert any(u == "jane" and a == "search" for u, a, _ in journal)
    assert any(u == "pat" and a == "modify" for u, a, _ in journal)

    call_command("verifyjournal")
    assert "every link holds" in capsys.readouterr().out
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_entry SET username = %s WHERE action = %s", ["mallory", "modify"])
    with pytest.raises(CommandError, match="broken"):
        call_command("verifyjournal")
