"""Error pages (issue 17): 400, 403, 404, 413, 414 and 500 are styled pages with the menu and a
way back; an ordinary 403 leaves no traceback in the log; the web server passes a long search
to Django instead of answering "Request Line is too large"."""

import http.client
import logging

import pytest
from django.test import RequestFactory

from pacsone.web import errors
from tests.pacsone.core.test_web_server import web_server  # noqa: F401 (a fixture)
from tests.people import make_user

pytestmark = pytest.mark.django_db


def assert_styled(response, status: int, title: str):
    page = response.content.decode()
    assert response.status_code == status
    assert f"<h1>{title}</h1>" in page and 'href="/">Go to the study list</a>' in page
    assert "Traceback" not in page and "/work/" not in page


def test_a_wrong_url_is_a_styled_404_with_the_menu(client):
    client.force_login(make_user("someone"))
    response = client.get("/no/such/page/")
    assert_styled(response, 404, "Page not found")
    assert ">Studies</a>" in response.content.decode() and "Log out" in response.content.decode()


def test_a_403_is_styled_names_the_privilege_and_logs_no_traceback(client, caplog):
    client.force_login(make_user("someone"))
    with caplog.at_level(logging.DEBUG):
        response = client.get("/trash/")
    assert_styled(response, 403, "Not allowed")
    assert "System Administration" in response.content.decode()
    assert not [record for record in caplog.records if record.exc_info]


def test_a_request_line_too_long_is_a_styled_414_with_the_menu(client):
    client.force_login(make_user("someone"))
    response = client.get("/", {"q": "x" * (errors.MAX_REQUEST_LINE + 10)})
    assert_styled(response, 414, "Address too long")
    assert "Log out" in response.content.decode()


def test_a_form_body_over_the_limit_is_a_styled_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/accounts/login/", {"username": "someone", "padding": "x" * 5000})
    assert_styled(response, 413, "Too large")


def test_a_bad_request_is_a_styled_400():
    request = RequestFactory().get("/")
    request.user = make_user("someone")
    assert_styled(errors.bad_request(request), 400, "Bad request")


def test_a_server_error_is_a_styled_500_even_when_the_menu_cannot_be_drawn():
    class BrokenUser:
        @property
        def is_authenticated(self):
            raise RuntimeError("the database is down")

    request = RequestFactory().get("/")
    request.user = BrokenUser()
    response = errors.server_error(request)
    assert_styled(response, 500, "Something went wrong")


def test_an_unhandled_exception_answers_the_styled_500(settings):
    request = RequestFactory().get("/")
    request.user = make_user("someone")
    assert "Log out" in errors.server_error(request).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_web_server_passes_a_5000_character_search_to_the_application(web_server):  # noqa: F811
    connection = http.client.HTTPConnection("127.0.0.1", web_server, timeout=20)
    connection.request("GET", "/?patient_name=" + "A" * 5000)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 302 and "/accounts/login/" in response.getheader("Location")
    assert b"Request Line is too large" not in body
    connection.request("GET", "/?q=" + "A" * 20000)
    response = connection.getresponse()
    assert response.status == 414 and b"Address too long" in response.read()
    connection.close()
