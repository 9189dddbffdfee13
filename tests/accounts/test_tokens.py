"""API tokens: named, several per user, stored hashed, with an expiry; revoked on a password
change, a reset by root, disabling and deleting the user; a page to list, make and revoke
one's own; bad tokens are 401 and journaled."""

import datetime
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.tokens import MAX_TOKENS_PER_USER, hash_key, issue_token
from audit.models import Entry
from tests.people import PASSWORD, make_study, make_user

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "another-horse-battery-7"


@pytest.fixture
def jane():
    make_study("1.2.826.7.1", "PUB1", public=True)
    return make_user("jane", first_name="Jane", last_name="Smith")


def works(key: str) -> bool:
    response = Client().get("/api/studies/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code in (200, 401, 403), response.status_code  # 403: DRF without WWW-Authenticate
    return response.status_code == 200


def obtain(username="jane", password=PASSWORD, **extra) -> dict:
    response = Client().post("/api/auth/token/", {"username": username, "password": password, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def test_it_stores_only_a_hash_and_expires_after_the_setting(jane, settings):
    settings.PACS_TOKEN_DAYS = 7
    answer = obtain()
    token = ApiToken.objects.get(user=jane)
    assert token.key_hash == hash_key(answer["token"]) and answer["token"] not in token.key_hash
    assert token.prefix == answer["token"][:8] and token.name == "api"
    assert abs(token.expires_at - (timezone.now() + datetime.timedelta(days=7))) < datetime.timedelta(minutes=1)
    assert works(answer["token"])


def test_an_expired_token_is_refused_and_journaled(jane):
    key = obtain()["token"]
    later = timezone.now() + datetime.timedelta(days=31)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert not works(key)
    assert not ApiToken.objects.exists()  # removed once seen expired
    assert Entry.objects.filter(action="login_failed", target="API token", outcome="failure").exists()


def test_a_made_up_token_is_refused_and_journaled(jane):
    assert not works("not-a-token")
    assert Entry.objects.filter(action="login_failed", target="API token").count() == 1


def test_several_named_tokens_and_asking_again_rotates_one(jane):
    first = obtain(name="nightly")["token"]
    other = obtain(name="backup")["token"]
    again = obtain(name="nightly")["token"]
    assert not works(first) and works(other) and works(again)
    assert sorted(ApiToken.objects.values_list("name", flat=True)) == ["backup", "nightly"]


def test_the_number_of_tokens_is_bounded(jane):
    for number in range(MAX_TOKENS_PER_USER):
        issue_token(jane, f"t{number}")
    response = Client().post("/api/auth/token/", {"username": "jane", "password": PASSWORD, "name": "one more"})
    assert response.status_code == 400 and "revoke one first" in response.json()["detail"]


def test_changing_ones_password_revokes_the_tokens(jane):
    key = obtain()["token"]
    client = Client()
    client.force_login(jane)
    response = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                                   "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert not works(key)
    assert works(obtain(password=NEW_PASSWORD)["token"])


@pytest.fixture
def root_client():
    client = Client()
    client.force_login(make_user("root"))
    return client


def test_a_reset_by_root_revokes_the_tokens(jane, root_client):
    key = obtain()["token"]
    response = root_client.post(f"/accounts/users/{jane.pk}/password/",
                                {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert not works(key)


def test_disabling_revokes_the_tokens_for_good(jane, root_client):
    key = obtain()["token"]
    root_client.post(f"/accounts/users/{jane.pk}/active/")
    assert not works(key)
    root_client.post(f"/accounts/users/{jane.pk}/active/")  # enabled again: the old token stays dead
    assert User.objects.get(pk=jane.pk).is_active and not works(key)


def test_deleting_the_user_deletes_the_tokens(jane, root_client):
    key = obtain()["token"]
    root_client.post(f"/accounts/users/{jane.pk}/delete/")
    assert not works(key) and not ApiToken.objects.exists()


def test_a_password_set_through_the_api_revokes_the_tokens(jane, root_client):
    key = obtain()["token"]
    response = root_client.patch(f"/api/users/{jane.pk}/", {"password": NEW_PASSWORD}, content_type="application/json")
    assert response.status_code == 200
    assert not works(key)


def test_a_login_keeps_the_tokens(jane):
    key = obtain()["token"]
    response = Client().post("/accounts/login/", {"username": "jane", "password": PASSWORD})
    assert response.status_code == 302 and Entry.objects.filter(action="login", username="jane").exists()
    assert works(key)


def test_the_token_page_lists_makes_and_revokes_ones_own(jane):
    other = make_user("other")
    _theirs, their_key = issue_token(other, "theirs")
    client = Client()
    client.force_login(jane)
    made = client.post("/accounts/tokens/", {"name": "report script"})
    key = made.context["created_key"]
    assert made.status_code == 200 and key.encode() in made.content and works(key)
    token = ApiToken.objects.get(user=jane)
    listed = client.get("/accounts/tokens/")
    assert b"report script" in listed.content and token.prefix.encode() in listed.content
    assert key.encode() not in listed.content  # shown once only
    assert b"theirs" not in listed.content
    assert client.post(f"/accounts/tokens/{_theirs.pk}/revoke/").status_code == 404  # not hers
    assert works(their_key)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert not works(key)
    assert Entry.objects.filter(username="jane", target="revoked API token report script").exists()


def test_last_use_is_recorded(jane):
    key = obtain()["token"]
    assert ApiToken.objects.get().last_used_at is None
    works(key)
    assert ApiToken.objects.get().last_used_at is not None
