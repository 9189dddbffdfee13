"""A viewer's requests are journaled as one "view" entry per user, address and study per
PACS_VIEW_JOURNAL_MINUTES (OHIF fetches every frame on its own): 100 frame requests, metadata and
rendered images make one entry; a new window makes another; a refusal is journaled every time;
downloads are journaled one by one."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from audit import journal
from audit.models import Action, Entry, Outcome
from tests.people import make_user

from .conftest import CT_SERIES, CT_STUDY, client_for

pytestmark = pytest.mark.django_db(transaction=True)

BASE = f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/instances"


def views_of(study_uid: str, username: str):
    return Entry.objects.filter(action=Action.VIEW, study_uid=study_uid, username=username)


def test_a_hundred_frame_requests_are_one_view_entry(client, world, ct_study, monkeypatch):
    reader = world.users["physician"]
    client.force_login(reader)
    for number in range(100):
        answer = client.get(f"{BASE}/{CT_SERIES}.{number % 3 + 1}/frames/1")
        assert answer.status_code == 200
    assert client.get(f"/dicomweb/studies/{CT_STUDY}/metadata").status_code == 200
    assert client.get(f"{BASE}/{CT_SERIES}.1/rendered", HTTP_ACCEPT="image/png").status_code == 200
    [entry] = views_of(CT_STUDY, reader.username)
    assert entry.target == "dicomweb frames" and "within 10 min" in entry.detail
    # Another address is another entry (the same person somewhere else is worth knowing).
    assert client.get(f"{BASE}/{CT_SERIES}.1/frames/1", REMOTE_ADDR="10.9.8.7").status_code == 200
    assert views_of(CT_STUDY, reader.username).count() == 2
    # Once the window has passed, the next request is journaled again.
    later = timezone.now() + timedelta(minutes=11)
    monkeypatch.setattr(journal, "timezone", SimpleNamespace(now=lambda: later))  # the journal's clock only
    assert client.get(f"{BASE}/{CT_SERIES}.2/frames/1").status_code == 200
    assert views_of(CT_STUDY, reader.username).count() == 3


def test_each_user_gets_their_own_entry_and_the_window_can_be_off(client, world, ct_study, settings):
    for role in ("physician", "power"):
        client.force_login(world.users[role])
        for _ in range(5):
            assert client.get(f"{BASE}/{CT_SERIES}.1/frames/1").status_code == 200
        assert views_of(CT_STUDY, world.users[role].username).count() == 1
    settings.PACS_VIEW_JOURNAL_MINUTES = 0
    for _ in range(3):
        assert client.get(f"{BASE}/{CT_SERIES}.1/frames/1").status_code == 200
    assert views_of(CT_STUDY, "power").count() == 4


def test_refusals_and_downloads_are_journaled_every_time(live_server, world, ct_study, client):
    hidden = world.studies["other"]
    client.force_login(world.users["outsider"])  # sees public studies only
    for _ in range(3):
        assert client.get(f"/dicomweb/studies/{hidden.study_instance_uid}/metadata").status_code == 404
    assert Entry.objects.filter(username="outsider", study_uid=hidden.study_instance_uid,
                                outcome=Outcome.DENIED).count() == 3
    downloader = make_user("dl", ["download", "view"], first_name="Dee", last_name="Load")
    dicomweb = client_for(live_server, downloader)
    for _ in range(2):
        dicomweb.retrieve_instance(CT_STUDY, CT_SERIES, f"{CT_SERIES}.1")
    assert Entry.objects.filter(username="dl", action=Action.DOWNLOAD, study_uid=CT_STUDY).count() == 2
