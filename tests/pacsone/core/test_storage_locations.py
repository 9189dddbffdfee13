"""`manage.py storagelocations` and the storage pages: add, list, change watermarks, make
current; bad input gets a clear error; each change is journaled."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Action, Entry
from pacsone import storage
from pacsone.models import RetentionRule, StorageLocation, Study
from tests.helpers import ingest_instance, make_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("storagelocations", *args, stdout=out)
    return out.getvalue()


def test_add_list_set_and_make_current(tmp_path):
    folder = tmp_path / "big disk"
    assert "Added archive2" in run("add", "archive2", str(folder), "--high", "90", "--low", "80")
    assert (folder / "tmp").is_dir()
    listed = run("list")
    assert "archive2 at" in listed and "purge above 90% down to below 80%" in listed and "default at" in listed
    run("set", "archive2", "--high", "95", "--rename", "archive-2")
    location = StorageLocation.objects.get(name="archive-2")
    assert (location.high_watermark, location.low_watermark) == (95, 80)
    run("current", "archive-2")
    assert storage.current_location() == location
    instance = ingest_instance(make_file(tmp_path, "a.dcm"))
    assert instance.storage_location_id == location.pk
    run("set", "archive-2", "--no-watermarks")
    assert StorageLocation.objects.get(pk=location.pk).high_watermark is None
    entries = Entry.objects.filter(action=Action.CONFIGURATION, target__startswith="storage ")
    assert entries.count() == 4 and {e.username for e in entries} == {"manage.py"}


@pytest.mark.parametrize("args, error", [
    (("add", "x", "relative/path"), "absolute path"),
    (("add", "x", "{tmp}/a", "--high", "80"), "set both watermarks"),
    (("add", "x", "{tmp}/a", "--high", "70", "--low", "70"), "low watermark must be below"),
    (("add", "x", "{tmp}/a", "--high", "101", "--low", "70"), "between 0 and 100"),
    (("add", "x", "{storage}/inside"), "overlaps the location default"),
    (("current", "nothing"), "no storage location is named nothing"),
])
def test_bad_input_gets_a_clear_error(tmp_path, args, error):
    default = storage.default_location()
    args = [a.format(tmp=tmp_path, storage=default.path) for a in args]
    with pytest.raises(CommandError, match=error):
        run(*args)
    assert StorageLocation.objects.count() == 1


def test_a_name_is_unique(tmp_path):
    run("add", "x", str(tmp_path / "a"))
    with pytest.raises(CommandError, match="named x exists already"):
        run("add", "x", str(tmp_path / "b"))


def test_the_storage_page_lists_adds_and_makes_current(client, tmp_path):
    client.force_login(make_user("admin", ["system_admin"]))
    page = client.get("/storage/")
    assert page.status_code == 200 and b"default" in page.content and b"% of" in page.content
    response = client.post("/storage/", {"name": "second", "path": str(tmp_path / "s"), "high": "90", "low": "75",
                                         "current": "on"})
    assert response.status_code == 302
    second = StorageLocation.objects.get(name="second")
    assert second.is_default and (second.high_watermark, second.low_watermark) == (90, 75)
    bad = client.post("/storage/", {"name": "third", "path": "not/absolute"}, follow=True)
    assert b"Not added: give the folder as an absolute path" in bad.content
    client.post(f"/storage/{second.pk}/", {"name": "second", "high": "", "low": ""})
    assert StorageLocation.objects.get(pk=second.pk).high_watermark is None
    default = StorageLocation.objects.get(name="default")
    client.post(f"/storage/{default.pk}/current/")
    assert StorageLocation.objects.get(pk=default.pk).is_default
    assert not StorageLocation.objects.get(pk=second.pk).is_default


def test_retention_rules_and_legal_hold_from_the_pages(client, tmp_path):
    admin = make_user("admin", ["system_admin", "view"])
    client.force_login(admin)
    client.post("/storage/retention/", {"modality": "", "keep_days": "30"})
    client.post("/storage/retention/", {"modality": "mg", "keep_days": "3650"})
    assert {(r.modality, r.keep_days) for r in RetentionRule.objects.all()} == {("", 30), ("MG", 3650)}
    bad = client.post("/storage/retention/", {"modality": "CT", "keep_days": "soon"}, follow=True)
    assert b"keep days must be a whole number" in bad.content
    client.post("/storage/retention/", {"modality": "MG", "remove": "1"})
    assert list(RetentionRule.objects.values_list("modality", flat=True)) == [""]
    instance = ingest_instance(make_file(tmp_path, "a.dcm"))
    uid = instance.series.study.study_instance_uid
    assert client.post(f"/actions/study/{uid}/legal-hold/", {"hold": "1"}).status_code == 302
    assert Study.objects.get(study_instance_uid=uid).legal_hold
    assert Entry.objects.filter(action=Action.MODIFY, study_uid=uid, detail="legal_hold=True").exists()
    client.post(f"/actions/study/{uid}/legal-hold/", {"hold": "0"})
    assert not Study.objects.get(study_instance_uid=uid).legal_hold
