"""pacsone/access.py, one comprehensive test per access function (every role against a public
study, a private study the role may see and one it may not), and the actions that must reach
only what their actor may see."""

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from pydicom.dataset import Dataset

from audit.models import Entry
from pacsone import access
from pacsone.actions import do_mark_study, do_set_patient_public, do_set_study_public
from pacsone.deletion import do_empty_trash, do_trash_study
from pacsone.editing import do_edit_study
from pacsone.models import Instance, Series, Study
from pacsone.notes import do_add_note
from routing.models import Job
from tests.people import EVERY_ROLE, VISIBLE, make_study, make_user, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = make_world()
    for study in world.studies.values():
        Instance.objects.create(sop_instance_uid=study.study_instance_uid + ".9", sop_class_uid="1.2",
                                series=study.series.get(), transfer_syntax_uid="1.2.840.10008.1.2.1",
                                storage_location=_location(), file_path="x", file_size=1, sha256="0")
    return world


def _location():
    from pacsone import storage

    return storage.default_location()


def denied_entries():
    return Entry.objects.filter(outcome="denied")


def check_gate(world, reach, for_role):
    """`reach(user, study)` returns the object or raises Http404; `for_role(user)` is the
    queryset form. Each refusal writes exactly one denied entry."""
    for role in EVERY_ROLE:
        user = world.users[role]
        for name, study in world.studies.items():
            before = denied_entries().count()
            if name in VISIBLE[role]:
                assert reach(user, study) is not None, (role, name)
                assert denied_entries().count() == before
            else:
                with pytest.raises(Http404):
                    reach(user, study)
                assert denied_entries().count() == before + 1, (role, name)
        assert for_role(user) == {n for n in world.studies if n in VISIBLE[role]}, role


def names(world, studies):
    by_pk = {study.pk: name for name, study in world.studies.items()}
    return {by_pk[pk] for pk in studies}


def test_access_study(world):
    check_gate(world, lambda user, study: access.access_study(user, study.study_instance_uid),
               lambda user: names(world, access.studies_for(user).values_list("pk", flat=True)))


def test_access_patient(world):
    check_gate(world, lambda user, study: access.access_patient(user, study.patient.pk),
               lambda user: names(world, Study.objects.filter(patient__in=access.patients_for(user))
                                  .values_list("pk", flat=True)))


def test_access_series_and_instance(world):
    check_gate(world, lambda user, study: access.access_series(user, study.study_instance_uid,
                                                               study.series.get().series_instance_uid),
               lambda user: names(world, access.series_for(user).values_list("study", flat=True)))
    check_gate(world, lambda user, study: access.access_instance(user, study.study_instance_uid,
                                                                 study.study_instance_uid + ".9"),
               lambda user: names(world, access.instances_for(user).values_list("series__study", flat=True)))


def test_access_attachment(world):
    root = world.users["root"]
    attachments = {name: do_add_note(study, "note", [SimpleUploadedFile("a.txt", b"text")], acting_user=root)
                   .attachments.get() for name, study in world.studies.items()}
    by_study = {attachment.note.study_id: attachment for attachment in attachments.values()}
    check_gate(world, lambda user, study: access.access_attachment(user, by_study[study.pk].pk),
               lambda user: names(world, access.attachments_for(user).values_list("note__study", flat=True)))


def test_an_image_is_reached_only_through_its_own_study(world):
    jane = world.users["physician"]
    hidden = world.studies["other"]
    with pytest.raises(Http404):  # a visible study in the URL does not open another study's image
        access.access_instance(jane, world.studies["own"].study_instance_uid, hidden.study_instance_uid + ".9")
    assert denied_entries().count() == 1


def test_a_missing_and_a_hidden_study_get_the_same_answer_and_the_journal_tells_them_apart(world):
    jane = world.users["physician"]
    answers = []
    for uid in ("9.9.9", world.studies["other"].study_instance_uid):
        with pytest.raises(Http404) as refused:
            access.access_study(jane, uid)
        answers.append(str(refused.value))
    assert answers[0] == answers[1]
    assert [e.detail for e in denied_entries().order_by("id")] == ["no such object", "not visible to this user"]
    assert all(e.username == "jane" for e in denied_entries())


def test_a_bad_id_is_refused_as_missing(world):
    with pytest.raises(Http404):
        access.access_patient(world.users["root"], "not-a-number")


def test_access_job_and_its_result(world, settings):
    root, jane, sysadmin = world.users["root"], world.users["physician"], world.users["sysadmin"]
    (settings.DATA_DIR / "exports").mkdir(exist_ok=True)
    (settings.DATA_DIR / "exports" / "other.zip").write_bytes(b"zip")
    job = Job.objects.create(kind=Job.Kind.EXPORT, title="Export of 1 study", owner=root, message="OTHER^PAT",
                             result_path="exports/other.zip")
    job.studies.set([world.studies["other"]])
    assert access.access_job(root, job.pk).message == "OTHER^PAT"
    assert access.access_job_result(root, job.pk)[1].name == "other.zip"
    # System Administration lists every job, but not the patient data of a study it may not see.
    shown = access.access_job(sysadmin, job.pk)
    assert shown.message == access.HIDDEN_MESSAGE and shown.result_path == ""
    for user in (sysadmin, jane):
        with pytest.raises(Http404):
            access.access_job_result(user, job.pk)
    with pytest.raises(Http404):
        access.access_job(jane, job.pk)
    assert denied_entries().count() == 3
    assert set(access.jobs_for(jane)) == set() and set(access.jobs_for(sysadmin)) == {job}


def test_the_owner_loses_the_result_of_a_study_they_may_no_longer_see(world, settings):
    jane = world.users["physician"]
    (settings.DATA_DIR / "exports").mkdir(exist_ok=True)
    (settings.DATA_DIR / "exports" / "own.zip").write_bytes(b"zip")
    job = Job.objects.create(kind=Job.Kind.EXPORT, title="Export", owner=jane, result_path="exports/own.zip")
    job.studies.set([world.studies["own"]])
    assert access.access_job_result(jane, job.pk)
    Study.objects.filter(pk=world.studies["own"].pk).update(referring_physician_name="JONES^BOB")
    with pytest.raises(Http404):
        access.access_job_result(jane, job.pk)


# --- Actions reach only what their actor may see --------------------------------------------------------


@pytest.fixture
def shared_patient(world):
    """Jane's study and a stranger's of the same patient; Jane also holds Modify and Mark Study."""
    jane = world.users["physician"]
    jane.privileges = ["modify", "mark_study"]
    jane.save()
    jane = type(jane).objects.get(pk=jane.pk)
    mine = make_study("1.2.826.9.1", "SHARED", referring="SMITH^JANE", patient_name="SHARED^PAT")
    theirs = make_study("1.2.826.9.2", "SHARED", referring="JONES^BOB", patient_name="SHARED^PAT")
    return jane, mine, theirs


def test_publishing_a_patient_needs_view_and_never_reaches_a_hidden_study(shared_patient):
    jane, mine, theirs = shared_patient
    with pytest.raises(PermissionDenied):
        do_set_patient_public(mine.patient, True, acting_user=jane)
    assert not Study.objects.filter(pk__in=[mine.pk, theirs.pk], public=True).exists()
    assert denied_entries().get().patient_id == "SHARED"
    power = make_user("boss", ["view", "modify"])
    do_set_patient_public(mine.patient, True, acting_user=power)
    assert Study.objects.filter(patient=mine.patient, public=True).count() == 2
    assert Entry.objects.filter(action="modify", username="boss", outcome="success").count() == 1


def test_a_study_action_on_a_study_the_actor_may_not_see_is_refused(shared_patient):
    jane, mine, theirs = shared_patient
    for act in (lambda: do_set_study_public(theirs, True, acting_user=jane),
                lambda: do_mark_study(theirs, True, acting_user=jane),
                lambda: do_trash_study(theirs, acting_user=jane),
                lambda: do_add_note(theirs, "hello", acting_user=jane)):
        with pytest.raises(PermissionDenied):
            act()
    theirs.refresh_from_db()
    assert not theirs.public and not theirs.read and not theirs.notes.exists()
    assert denied_entries().count() == 4


def test_actions_write_their_entry_with_the_change(shared_patient):
    jane, mine, theirs = shared_patient
    do_set_study_public(mine, True, acting_user=jane)
    do_mark_study(mine, True, acting_user=jane)
    do_add_note(mine, "seen", acting_user=jane)
    assert do_trash_study(mine, acting_user=jane) == 0
    assert list(Entry.objects.order_by("id").values_list("action", "study_uid", "username")) == [
        ("modify", mine.study_instance_uid, "jane"), ("mark", mine.study_instance_uid, "jane"),
        ("modify", mine.study_instance_uid, "jane"), ("delete", mine.study_instance_uid, "jane")]
    assert not access.studies_for(jane).filter(pk=mine.pk).exists()  # in the trash: hidden, kept
    assert do_empty_trash(acting_user=make_user("admin", ["system_admin"]), expired_only=False) == 1
    assert Entry.objects.order_by("id").last().detail.startswith("deleted for good: trash emptied")
    assert Study.objects.filter(pk=theirs.pk).exists() and not Study.objects.filter(pk=mine.pk).exists()


def test_an_edit_of_patient_attributes_needs_view_and_a_study_edit_does_not(shared_patient, settings):
    jane, mine, theirs = shared_patient
    with pytest.raises(PermissionDenied):
        do_edit_study(mine, {"patient_name": "RENAMED^X"}, acting_user=jane)
    assert not Job.objects.exists()
    job = do_edit_study(mine, {"study_description": "KNEE"}, acting_user=jane)
    assert job.title == "Edit of study attributes (1 study)" and list(job.studies.all()) == [mine]
    assert Entry.objects.filter(action="modify", username="jane", target=f"job {job.pk}").exists()
    assert do_edit_study(mine, {"study_description": mine.study_description}, acting_user=jane) is None


# --- Adding files, remote answers ------------------------------------------------------------------------------


def test_a_user_without_view_may_not_add_to_a_patient_or_study_they_may_not_see(world):
    jane, outsider = world.users["physician"], world.users["outsider"]
    other, own = world.studies["other"], world.studies["own"]
    assert not access.may_add_to(jane, other.patient.patient_id, "", "1.2.3.new")
    assert not access.may_add_to(jane, "NEW1", "", other.study_instance_uid)
    assert access.may_add_to(jane, own.patient.patient_id, "", "1.2.3.new")
    assert access.may_add_to(outsider, "NEW1", "", "1.2.3.new")
    assert access.may_add_to(world.users["power"], other.patient.patient_id, "", other.study_instance_uid)


def test_remote_answers_hide_the_studies_held_here_that_the_user_may_not_see(world):
    def answer(uid):
        ds = Dataset()
        ds.StudyInstanceUID = uid
        return ds

    answers = [answer(world.studies[name].study_instance_uid) for name in ("public", "own", "other")]
    answers.append(answer("1.2.3.elsewhere"))  # a study only the remote holds
    shown = access.remote_answers_for(world.users["physician"], answers)
    assert [a.StudyInstanceUID for a in shown] == [answers[i].StudyInstanceUID for i in (0, 1, 3)]
    assert denied_entries().get().action == "query"
    assert access.remote_answers_for(world.users["power"], answers) == answers


def test_a_series_of_a_study_lists_its_first_image(world):
    study = world.studies["own"]
    assert [s.first_sop for s in access.series_of(study)] == [study.study_instance_uid + ".9"]
    assert Series.objects.count() == 3
