"""The web entry points of the archive core: /healthz, login, the start page."""

from unittest import mock

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_with_json(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["storage"]["ok"]
    assert body["storage"]["free_bytes"] > 0


def test_healthz_says_503_when_the_database_is_down(client):
    with mock.patch("pacsone.web.health._database_ok", return_value=(False, "OperationalError")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_the_start_page_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_root_logs_in_and_sees_the_archive_figures(client, django_user_model):
    django_user_model.objects.create_superuser("root", password="a-long-passphrase")
    response = client.post("/accounts/login/", {"username": "root", "password": "a-long-passphrase"})
    assert response.status_code == 302

    page = client.get("/")
    assert page.status_code == 200
    assert b"</b> images" in page.content and b"PACSONE" in page.content


def test_a_wrong_password_is_refused_with_a_message(client, django_user_model):
    django_user_model.objects.create_user("jane", password="right-password-1")
    response = client.post("/accounts/login/", {"username": "jane", "password": "wrong"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_an_unknown_url_is_404(client):
    assert client.get("/no/such/page").status_code == 404
