"""Who may ask: a session (with CSRF for changes), an API token (Token or Bearer), HTTP Basic;
nothing else. Failures are 401 with a Basic challenge and are journaled as failed logins."""

import base64

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Action, Entry
from tests.people import PASSWORD

from .conftest import client_for, token_for
from .test_stow import CONTENT_TYPE, body, part10
from tests.helpers import make_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_no_credentials_is_a_401_with_a_challenge(client, world):
    response = client.get("/dicomweb/studies")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic realm=")
    assert b"PUB1" not in response.content


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_a_token_works_in_either_scheme(client, world, scheme):
    key = token_for(world.users["physician"])
    response = client.get("/dicomweb/studies", HTTP_AUTHORIZATION=f"{scheme} {key}")
    assert response.status_code == 200 and len(response.json()) == 2


def test_basic_works_and_a_wrong_password_is_journaled(client, world):
    assert client.get("/dicomweb/studies", HTTP_AUTHORIZATION=basic("jane", PASSWORD)).status_code == 200
    before = Entry.objects.order_by("-id").first().pk
    response = client.get("/dicomweb/studies", HTTP_AUTHORIZATION=basic("jane", "wrong"))
    assert response.status_code == 401
    assert Entry.objects.filter(id__gt=before, action=Action.LOGIN_FAILED).count() == 1


@pytest.mark.parametrize("header", ["Token nonsense", "Bearer ", "Basic !!!", "Digest abc", "Basic " +
                                    base64.b64encode(b"nobody:x").decode()])
def test_bad_credentials_are_401(client, world, header):
    assert client.get("/dicomweb/studies", HTTP_AUTHORIZATION=header).status_code == 401


def test_a_real_client_with_basic_auth(live_server, world):
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_user_pass

    session = create_session_from_user_pass("jane", PASSWORD)
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb", session=session)
    assert len(client.search_for_studies()) == 2
    assert len(client_for(live_server, world.users["root"]).search_for_studies()) == 3


def test_a_session_may_read_but_must_carry_csrf_to_store(world):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.users["root"])
    assert browser.get("/dicomweb/studies").status_code == 200
    data = body(part10(make_dataset(patient_id="CSRF1")))
    refused = browser.generic("POST", "/dicomweb/studies", data, content_type=CONTENT_TYPE)
    assert refused.status_code == 403
    # With a token the same request needs no CSRF token: another site cannot send it.
    key = token_for(world.users["root"])
    stored = browser.generic("POST", "/dicomweb/studies", data, content_type=CONTENT_TYPE,
                             HTTP_AUTHORIZATION=f"Token {key}")
    assert stored.status_code == 200


def test_an_expired_password_is_refused(client, world):
    jane = world.users["physician"]
    jane.password_changed_at = timezone.now() - timezone.timedelta(days=400)
    jane.save(update_fields=["password_changed_at"])
    response = client.get("/dicomweb/studies", HTTP_AUTHORIZATION=basic("jane", PASSWORD))
    assert response.status_code == 403 and b"expired" in response.content
