"""OHIF at /viewer/: logged-in users only, a clear page when it is not installed, its public path
moved under /viewer/, its configuration pointing at our /dicomweb/, nothing outside its folder."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

INDEX = ("<html><head><script>window.PUBLIC_URL = '/';</script><link href=\"/app.bundle.css\">"
         "<script src=\"/app-config.js\"></script><script src=\"/app.bundle.1.js\"></script></head></html>")


@pytest.fixture
def ohif(tmp_path, settings):
    folder = tmp_path / "ohif"
    folder.mkdir()
    (folder / "index.html").write_text(INDEX)
    (folder / "app.bundle.1.js").write_text('x;__webpack_require__.p = "/";y')
    (folder / "app.bundle.css").write_text("a{src:url(/font.woff2)}")
    (folder / "logo.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    settings.PACS_OHIF_DIR = str(folder)
    return folder


def test_anonymous_is_sent_to_log_in(client, ohif):
    response = client.get("/viewer/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_and_bundles_are_served_under_viewer(client, world, ohif):
    client.force_login(world.users["physician"])
    page = client.get("/viewer/viewer", {"StudyInstanceUIDs": "1.2.826.1.1"}).content.decode()
    assert "window.PUBLIC_URL = '/viewer/'" in page and 'src="/viewer/app.bundle.1.js"' in page
    assert b'__webpack_require__.p = "/viewer/"' in client.get("/viewer/app.bundle.1.js").content
    assert b"url(/viewer/font.woff2)" in client.get("/viewer/app.bundle.css").content
    assert b"".join(client.get("/viewer/logo.svg").streaming_content) == b"<svg/>"
    config = client.get("/viewer/app-config.js").content.decode()
    assert '"qidoRoot": "http://testserver/dicomweb"' in config and '"routerBasename": "/viewer"' in config


def test_nothing_outside_its_folder_is_served(client, world, ohif):
    client.force_login(world.users["root"])
    assert client.get("/viewer/../secret.txt").status_code in (404, 302)
    assert client.get("/viewer/%2e%2e/secret.txt").status_code == 404
    assert client.get("/viewer/missing.js").status_code == 404


def test_without_ohif_the_page_says_how_to_install_it(client, world, tmp_path):
    with override_settings(PACS_OHIF_DIR=str(tmp_path / "none")):
        client.force_login(world.users["root"])
        response = client.get("/viewer/")
    assert response.status_code == 503 and b"make ohif" in response.content
