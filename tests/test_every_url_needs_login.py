"""Every URL the project serves, walked from the URL map: an anonymous visitor gets a login
redirect or 401/403 and never data. New pages are covered the moment they are added."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Public on purpose: the login page, the health probe, the token exchange (POST only), static
# files. The API's schema and root listing need a login too.
PUBLIC = {"accounts/login/", "healthz", "healthz/live", "healthz/ready", "api/auth/token/"}


def walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def example_path(route: str) -> str:
    """A concrete path for a route: sample values for its converters and groups."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    path = re.sub(r"<int:\w+>", "1", path)
    path = re.sub(r"<[\w:]+>", "1.2.3", path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + path


# DRF's format-suffix twins (`.json`) of each API route lead to the same views.
ROUTES = sorted(r for r in set(walk(get_resolver().url_patterns)) if "format" not in r)


def test_the_walk_finds_the_pages():
    assert "accounts/users/" in ROUTES and any(r.startswith("api/") for r in ROUTES)


@pytest.mark.parametrize("route", [r for r in ROUTES if r not in PUBLIC])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_turned_away(client, route, method):
    response = getattr(client, method)(example_path(route))
    if response.status_code == 302:
        assert response["Location"].startswith("/accounts/login/"), response["Location"]
    else:
        assert response.status_code in (401, 403, 404, 405), (route, response.status_code)
