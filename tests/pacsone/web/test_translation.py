"""The interface is ready for translation (issue 17): English ships, and a language whose
compiled catalog is added to the locale folder is served to browsers that prefer it, through
LocaleMiddleware, with no change to the code (GNU gettext's msgfmt compiles the catalog)."""

import datetime
import shutil
import subprocess

import pytest
from django.utils import translation

from pacsone.humanize import age
from tests.people import make_user

pytestmark = pytest.mark.django_db

GERMAN = '''msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

msgid "Studies"
msgstr "Studien"

msgid "Log out"
msgstr "Abmelden"

msgid "Select one or more studies first."
msgstr "Zuerst eine oder mehrere Studien auswählen."

msgid "%(n)d y"
msgstr "%(n)d J."
'''


def test_english_ships_and_the_page_says_its_language(client):
    client.force_login(make_user("viewer", ["view"]))
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="en">' in page and ">Studies</a>" in page and "Log out" in page


@pytest.mark.peers
def test_an_added_catalog_is_served_to_browsers_that_prefer_it(client, settings, tmp_path):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.fail("GNU gettext's msgfmt is missing (apt-get install gettext)")
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.po").write_text(GERMAN, encoding="utf-8")
    subprocess.run([msgfmt, "-o", str(folder / "django.mo"), str(folder / "django.po")], check=True)
    settings.LOCALE_PATHS = [tmp_path]
    settings.LANGUAGES = [("en", "English"), ("de", "German")]
    client.force_login(make_user("reader", ["view", "mark_study"]))
    german = client.get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9").content.decode()
    assert '<html lang="de">' in german and ">Studien</a>" in german and "Abmelden" in german
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">Studies</a>" in english and "Abmelden" not in english
    # Python's messages and pacsone.humanize go through gettext too.
    response = client.post("/actions/studies/", {"action": "read"}, HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert "Zuerst eine oder mehrere Studien auswählen." in response.content.decode()
    with translation.override("de"):
        assert age(datetime.date(1980, 1, 1), datetime.date(2026, 6, 1)) == "46 J."
