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
    assert body(client.get("/viewer/app.bundle.1.js")) == b'x;__webpack_require__.p = "/viewer/";y'
    assert body(client.get("/viewer/app.bundle.css")) == b"a{src:url(/viewer/font.woff2)}"
    assert body(client.get("/viewer/logo.svg")) == b"<svg/>"
    config = client.get("/viewer/app-config.js").content.decode()
    assert '"qidoRoot": "http://testserver/dicomweb"' in config and '"routerBasename": "/viewer"' in config


def body(response) -> bytes:
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


def test_a_bundle_is_rewritten_once_per_version_and_sent_as_a_file(client, world, ohif, settings, monkeypatch,
                                                                    tmp_path):
    """The copy under DATA_DIR/viewer-files is made at the first request and sent from then on; a
    bundle that changes (OHIF upgraded in place) gets a new copy, the old one goes; a bundle
    without anything to move is sent as it is."""
    from pacsone.dicomweb import viewer

    settings.DATA_DIR = tmp_path / "data"
    client.force_login(world.users["physician"])
    read = []
    real = viewer.Path.read_bytes
    monkeypatch.setattr(viewer.Path, "read_bytes", lambda path: read.append(path.name) or real(path))
    (ohif / "plain.bundle.js").write_text("nothing to move")

    for _ in range(3):
        assert body(client.get("/viewer/app.bundle.1.js")) == b'x;__webpack_require__.p = "/viewer/";y'
        assert body(client.get("/viewer/plain.bundle.js")) == b"nothing to move"
    assert read == ["app.bundle.1.js", "plain.bundle.js"]
    copies = sorted((settings.DATA_DIR / "viewer-files").iterdir())
    assert [copy.name.split("-", 2)[2] for copy in copies] == ["app.bundle.1.js"]

    (ohif / "app.bundle.1.js").write_text('z;__webpack_require__.p = "/";')
    assert body(client.get("/viewer/app.bundle.1.js")) == b'z;__webpack_require__.p = "/viewer/";'
    assert sorted((settings.DATA_DIR / "viewer-files").iterdir()) != copies
    assert len(list((settings.DATA_DIR / "viewer-files").iterdir())) == 1


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
