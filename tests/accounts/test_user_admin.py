"""User administration pages (root only) and the production security check."""

import subprocess
import sys

import pytest
from django.conf import settings

from accounts.models import User, UserGroup
from audit.models import Entry
from tests.people import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(client):
    client.force_login(make_user("root"))
    return client


def test_root_creates_jane_with_chosen_privileges(root_client):
    response = root_client.post("/accounts/users/new/", {
        "username": "jane", "first_name": "Jane", "last_name": "Smith", "email": "jane@example.org",
        "is_active": "on", "privileges": ["query", "download"],
        "password1": "Temporary-pass-42", "password2": "Temporary-pass-42",
    })
    assert response.status_code == 302
    jane = User.objects.get(username="jane")
    assert jane.privileges == ["query", "download"] and jane.get_full_name() == "Jane Smith"
    assert jane.category == "Regular User"
    listing = root_client.get("/accounts/users/?q=smith")
    assert b"jane" in listing.content and b"Regular User" in listing.content


def test_root_edits_disables_and_deletes(root_client):
    jane = make_user("jane")
    root_client.post(f"/accounts/users/{jane.pk}/", {"username": "jane", "first_name": "Jane", "last_name": "Smith",
                                                     "is_active": "on", "privileges": ["view", "modify"]})
    jane.refresh_from_db()
    assert jane.category == "Power User"
    root_client.post(f"/accounts/users/{jane.pk}/active/")
    jane.refresh_from_db()
    assert not jane.is_active
    root_client.post(f"/accounts/users/{jane.pk}/delete/")
    assert not User.objects.filter(username="jane").exists()
    targets = set(Entry.objects.filter(action="user_admin").values_list("target", flat=True))
    assert {"changed user jane", "disabled user jane", "deleted user jane"} <= targets


def test_root_resets_a_password(root_client, client):
    jane = make_user("jane")
    root_client.post(f"/accounts/users/{jane.pk}/password/", {"password1": "Another-pass-43", "password2": "Another-pass-43"})
    jane.refresh_from_db()
    assert jane.check_password("Another-pass-43") and not jane.check_password(PASSWORD)


def test_root_cannot_be_disabled_or_deleted(root_client):
    root = User.objects.get(username="root")
    root_client.post(f"/accounts/users/{root.pk}/active/")
    root_client.post(f"/accounts/users/{root.pk}/delete/")
    root.refresh_from_db()
    assert root.is_active


def test_mismatched_passwords_are_refused(root_client):
    response = root_client.post("/accounts/users/new/", {"username": "x", "password1": "Temporary-pass-42",
                                                         "password2": "Temporary-pass-43"})
    assert b"differ" in response.content and not User.objects.filter(username="x").exists()


def test_groups_give_privileges_and_institution_access(root_client):
    jane = make_user("jane")
    response = root_client.post("/accounts/groups/new/", {"name": "Radiology", "description": "General Hospital",
                                                          "privileges": ["view"], "members": [jane.pk]})
    assert response.status_code == 302
    group = UserGroup.objects.get(name="Radiology")
    assert list(group.members.all()) == [jane]
    assert User.objects.get(pk=jane.pk).category == "Regular User"  # View alone is not Power
    root_client.post(f"/accounts/groups/{group.pk}/delete/")
    assert not UserGroup.objects.exists()


def test_a_system_administrator_cannot_reach_user_administration(client):
    admin = make_user("sysadmin", ["system_admin"])
    client.force_login(admin)
    assert client.get("/accounts/users/").status_code == 403
    assert client.post("/accounts/users/new/", {"username": "evil"}).status_code == 403
    assert not User.objects.filter(username="evil").exists()


def test_check_deploy_is_clean_with_https_settings(tmp_path):
    env = {"PACS_DATA_DIR": str(tmp_path), "PACS_HTTPS": "true", "PACS_ALLOWED_HOSTS": "pacs.example.org",
           "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "pacsone.settings"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
