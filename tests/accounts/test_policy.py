"""Session and password policy: idle logout, password expiry, lockout; each step journaled."""

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from accounts.models import User
from audit.models import Entry
from tests.people import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def log_in(client, username, password=PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def later(minutes=0, days=0):
    """Patch the clock forward, as a frozen clock would."""
    moment = timezone.now() + datetime.timedelta(minutes=minutes, days=days)
    return mock.patch("django.utils.timezone.now", return_value=moment)


def test_login_and_logout_are_journaled(client):
    make_user("jane", first_name="Jane", last_name="Smith")
    assert log_in(client, "jane").status_code == 302
    client.post("/accounts/logout/")
    actions = list(Entry.objects.filter(username="jane").order_by("id").values_list("action", flat=True))
    assert actions == ["login", "logout"]


def test_idle_session_ends_after_ten_minutes(client):
    make_user("jane")
    log_in(client, "jane")
    with later(minutes=9):
        assert client.get("/").status_code == 200  # activity pushes the expiry forward
    with later(minutes=18):
        assert client.get("/").status_code == 200
    with later(minutes=29):
        response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_expired_password_must_be_changed_before_anything_else(client):
    make_user("jane")
    with later(days=61):
        assert log_in(client, "jane").status_code == 302
        response = client.get("/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/password/")
        assert client.get("/journal/").status_code == 302
        assert client.get("/api/studies/").status_code == 403
        page = client.get("/accounts/password/?expired=1")
        assert b"expired" in page.content
        changed = client.post("/accounts/password/", {
            "old_password": PASSWORD, "new_password1": "a-Fresh-passphrase-2", "new_password2": "a-Fresh-passphrase-2",
        })
        assert changed.status_code == 302
        assert client.get("/").status_code == 200
    assert Entry.objects.filter(action="password_change", username="jane").exists()


def test_a_password_fifty_nine_days_old_is_still_good(client):
    make_user("jane")
    with later(days=59):
        log_in(client, "jane")
        assert client.get("/").status_code == 200


def test_an_administrator_set_password_must_be_changed_at_first_login(client):
    make_user("root")
    client.force_login(User.objects.get(username="root"))
    response = client.post("/accounts/users/new/", {
        "username": "jane", "first_name": "Jane", "last_name": "Smith", "is_active": "on",
        "password1": "Temporary-pass-42", "password2": "Temporary-pass-42", "must_change_password": "on",
    })
    assert response.status_code == 302, response.content
    client.logout()
    log_in(client, "jane", "Temporary-pass-42")
    assert client.get("/")["Location"].startswith("/accounts/password/")


def test_failed_logins_lock_the_account_out(client, settings):
    make_user("jane")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = log_in(client, "jane", "wrong-password")
        assert response.status_code == 200
    assert log_in(client, "jane", "wrong-password").status_code == 429  # the last allowed failure
    locked = log_in(client, "jane")  # even the right password is refused now
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert Entry.objects.filter(action="login_failed", target="jane").count() >= settings.AXES_FAILURE_LIMIT
    assert Entry.objects.filter(action="locked_out", target="jane").exists()
    assert not Entry.objects.filter(action="login", username="jane").exists()


def test_password_validators_apply(client):
    make_user("root")
    client.force_login(User.objects.get(username="root"))
    response = client.post("/accounts/users/new/", {
        "username": "weak", "password1": "12345678", "password2": "12345678", "is_active": "on"})
    assert response.status_code == 200
    assert b"too common" in response.content or b"entirely numeric" in response.content
    assert not User.objects.filter(username="weak").exists()


def test_an_idle_session_end_is_journaled(client):
    from accounts.sessions import journal_expired_sessions

    make_user("jane")
    log_in(client, "jane")
    assert journal_expired_sessions() == "0 idle sessions ended"
    with later(minutes=11):
        assert journal_expired_sessions() == "1 idle session ended"
    entry = Entry.objects.filter(action="logout", username="jane").get()
    assert entry.target == "idle timeout"
    assert client.get("/").status_code == 302  # the session is gone
