"""Change Storage: studies move to another location as a job; each copy's SHA-256 is checked
at the target before the source goes; journaled; verifystorage covers every location."""

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom.uid import generate_uid

from audit.models import Action, Entry, Outcome
from pacsone import storage
from pacsone.change_storage import do_change_storage
from pacsone.models import Instance, StorageLocation, Study
from routing.models import Job
from tests.helpers import ingest_instance, make_file
from tests.people import make_user

pytestmark = pytest.mark.django_db


def make_study(folder, images=3) -> Study:
    uid = generate_uid()
    for i in range(images):
        ingest_instance(make_file(folder, f"{uid}-{i}.dcm", study_uid=uid, InstanceNumber=i + 1))
    return Study.objects.select_related("patient").get(study_instance_uid=uid)


@pytest.fixture
def second(tmp_path):
    return StorageLocation.objects.create(name="second", path=str(tmp_path / "second"))


def test_a_study_moves_with_each_file_checked_and_the_source_removed(tmp_path, second):
    study, other = make_study(tmp_path / "a"), make_study(tmp_path / "b")
    source = storage.default_location()
    before = {i.pk: (i.file_path, i.sha256) for i in Instance.objects.filter(series__study=study)}
    mover = make_user("mover", ["view", "change_storage"])

    job = Job.objects.get(pk=do_change_storage([study], second, acting_user=mover).pk)

    assert job.kind == Job.Kind.CHANGE_STORAGE and job.state == Job.State.DONE, job.message
    assert (job.done, job.total, job.failed) == (3, 3, 0)
    assert Study.objects.get(pk=study.pk).storage_location_id == second.pk
    for instance in Instance.objects.filter(series__study=study):
        assert instance.storage_location_id == second.pk
        assert (instance.file_path, instance.sha256) == before[instance.pk]
        with storage.open_stored(instance) as f:
            assert hashlib.sha256(f.read()).hexdigest() == instance.sha256
        assert not storage.exists(source, instance.file_path)
    for instance in Instance.objects.filter(series__study=other):  # the other study stays
        assert instance.storage_location_id == source.pk and storage.stored_exists(instance)
    moved = Entry.objects.get(action=Action.CHANGE_STORAGE, outcome=Outcome.SUCCESS, detail__contains="moved")
    assert moved.study_uid == study.study_instance_uid and moved.username == "mover"
    assert "3 files" in moved.detail and "SHA-256 checked" in moved.detail
    queued = Entry.objects.get(action=Action.CHANGE_STORAGE, detail="queued")
    assert queued.target == f"job {job.pk} to second" and queued.study_uid == study.study_instance_uid


def test_a_damaged_file_leaves_the_study_where_it_was(tmp_path, second):
    study = make_study(tmp_path / "a")
    source = storage.default_location()
    damaged = Instance.objects.filter(series__study=study).order_by("pk").last()
    path = storage.absolute_path(source, damaged.file_path)
    path.write_bytes(path.read_bytes()[:-1] + b"X")

    job = Job.objects.get(pk=do_change_storage([study], second, acting_user=make_user("root")).pk)

    assert job.state == Job.State.FAILED and "0 of 1 study moved" in job.message
    assert "does not match its indexed SHA-256" in job.message
    assert Study.objects.get(pk=study.pk).storage_location_id == source.pk
    for instance in Instance.objects.filter(series__study=study):
        assert instance.storage_location_id == source.pk and storage.stored_exists(instance)
        assert not storage.exists(second, instance.file_path)  # the good copies made are removed
    failure = Entry.objects.get(action=Action.CHANGE_STORAGE, outcome=Outcome.FAILURE)
    assert failure.study_uid == study.study_instance_uid and "left where it was" in failure.detail


def test_moving_needs_the_privilege_and_a_visible_study(client, tmp_path, second):
    study = make_study(tmp_path / "a")
    client.force_login(make_user("viewer", ["view"]))
    assert client.post("/actions/change-storage/", {"study": study.study_instance_uid}).status_code == 403
    client.force_login(make_user("mover", ["change_storage"]))  # sees no private study
    response = client.post("/actions/change-storage/", {"study": study.study_instance_uid, "target": second.pk})
    assert response.status_code == 302 and not Job.objects.exists()
    assert Entry.objects.filter(action=Action.CHANGE_STORAGE, outcome=Outcome.DENIED).count() == 1


def test_the_page_asks_where_to_then_starts_the_job(client, tmp_path, second):
    study = make_study(tmp_path / "a", images=1)
    client.force_login(make_user("mover", ["view", "change_storage"]))
    page = client.post("/actions/change-storage/", {"study": study.study_instance_uid})
    assert page.status_code == 200 and b"second" in page.content and b"Move to" in page.content
    response = client.post("/actions/change-storage/", {"study": study.study_instance_uid, "target": second.pk})
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    assert job.state == Job.State.DONE and Study.objects.get(pk=study.pk).storage_location_id == second.pk


def test_verifystorage_checks_every_location(tmp_path, second, capsys):
    make_study(tmp_path / "a", 1)
    second_study = make_study(tmp_path / "b", 1)
    do_change_storage([second_study], second, acting_user=make_user("root"))
    out = StringIO()
    call_command("verifystorage", "--no-progress", stdout=out)
    assert "All 2 indexed files are present and intact." in out.getvalue()
    assert "default: 1" in out.getvalue() and "second: 1" in out.getvalue()

    moved = Instance.objects.get(series__study=second_study)
    path = storage.absolute_path(second, moved.file_path)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    StorageLocation.objects.create(name="gone", path=str(tmp_path / "never-made"))
    with pytest.raises(CommandError, match="2 problem"):
        call_command("verifystorage", "--no-progress", stdout=StringIO())
    printed = capsys.readouterr().out
    assert "location folder is missing: gone" in printed
    assert f"checksum differs: second:{moved.file_path}" in printed
