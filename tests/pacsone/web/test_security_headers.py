"""Headers on every answer: a Content-Security-Policy that allows no inline script (and no
template has one), Cache-Control: no-store on pages and API answers, the schema and the
browsable API behind the login, HTTPS settings."""

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template import engines

from pacsone.security_headers import CONTENT_SECURITY_POLICY
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db

EXECUTABLE_URL_ATTRIBUTES = {"href", "src", "action", "formaction"}


class InlineScriptFinder(HTMLParser):
    """Inline <script> bodies, on...= handlers and javascript: URLs in a template's markup."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes and attributes.get("type") != "application/json":
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{name}= handler at line {self.getpos()[0]}")
            if name in EXECUTABLE_URL_ATTRIBUTES and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL at line {self.getpos()[0]}")


def our_templates() -> list[Path]:
    folders = [Path(settings.BASE_DIR) / "templates"]
    folders += [Path(settings.BASE_DIR) / app / "templates" for app in ("pacsone", "accounts", "audit", "routing", "hl7")]
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*.html"))


def test_no_template_has_inline_script():
    templates = our_templates()
    assert len(templates) > 20
    problems = {}
    for path in templates:
        finder = InlineScriptFinder()
        finder.feed(path.read_text())
        if finder.found:
            problems[str(path.relative_to(settings.BASE_DIR))] = finder.found
    assert problems == {}


def test_the_finder_finds_what_it_looks_for():
    finder = InlineScriptFinder()
    finder.feed('<script>x()</script><script type="application/json">{}</script><script src="/a.js"></script>'
                '<form onsubmit="return confirm()"></form><a href="javascript:history.back()">x</a>')
    assert len(finder.found) == 3


def test_every_template_still_compiles():
    engine = engines["django"]
    for path in our_templates():
        engine.get_template(str(path).split("templates/", 1)[1])


@pytest.fixture
def viewer(client):
    make_study("1.2.826.5.1", "PUB1", public=True)
    client.force_login(make_user("viewer", ["view"]))
    return client


@pytest.mark.parametrize("url", ["/", "/studies/1.2.826.5.1/", "/upload/", "/accounts/tokens/", "/api/studies/",
                                 "/api/patients/?format=json"])
def test_pages_and_api_answers_carry_csp_and_no_store(client, url):
    make_study("1.2.826.5.1", "PUB1", public=True)
    client.force_login(make_user("root"))
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY.split(
        "script-src")[1].split(";")[0]
    assert response["Cache-Control"] == "no-store"


def test_the_login_page_carries_them_too(client):
    response = client.get("/accounts/login/")
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("url", ["/api/schema/", "/api/"])
def test_the_schema_and_the_api_root_need_a_login(client, url):
    anonymous = client.get(url)
    assert anonymous.status_code in (401, 403)
    assert b"/api/studies/" not in anonymous.content and b"openapi" not in anonymous.content
    client.force_login(make_user("someone"))
    assert client.get(url).status_code == 200


def test_the_browsable_api_is_only_for_logged_in_users(client):
    anonymous = client.get("/api/studies/", HTTP_ACCEPT="text/html")
    assert anonymous.status_code in (401, 403)
    assert anonymous["Content-Type"] == "application/json" and b"<html" not in anonymous.content
    client.force_login(make_user("someone"))
    logged_in = client.get("/api/studies/", HTTP_ACCEPT="text/html")
    assert logged_in.status_code == 200 and logged_in["Content-Type"].startswith("text/html")


def test_delete_is_a_link_to_its_confirmation_page_not_a_form_that_relies_on_script(viewer):
    user = make_user("modifier", ["view", "modify"])
    viewer.force_login(user)
    page = viewer.get("/studies/1.2.826.5.1/").content.decode()
    assert '<a class="button danger" href="/actions/study/1.2.826.5.1/delete/"' in page
    assert 'action="/actions/study/1.2.826.5.1/delete/"' not in page
    script = (Path(settings.BASE_DIR) / "pacsone/static/pacsone/pages.js").read_text()
    assert "window.confirm(form.dataset.confirm)" in script  # other forms' questions: never a bare confirm()
