"""The one visibility rule (seed 004) and its cascade rules."""

import pytest

from accounts.models import UserGroup
from pacsone.models import Patient, Study
from pacsone.visibility import (
    can_see_study,
    group_visible_studies,
    set_patient_public,
    set_study_public,
    visible_patients,
)
from tests.people import VISIBLE, make_study, make_user, make_world

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", list(VISIBLE))
def test_each_role_sees_exactly_the_studies_the_rules_allow(role):
    world = make_world()
    user = world.users[role]
    seen = set(Study.objects.visible_to(user).values_list("study_instance_uid", flat=True))
    assert seen == {world.studies[name].study_instance_uid for name in VISIBLE[role]}
    patients = set(visible_patients(user).values_list("patient_id", flat=True))
    assert patients == {world.studies[name].patient.patient_id for name in VISIBLE[role]}


@pytest.mark.parametrize("field", ["referring_physician_name", "reading_physician_name"])
@pytest.mark.parametrize("stored", ["Smith^Jane", "SMITH^JANE^M^^MD", "Jane Smith"])
def test_a_physician_sees_a_private_study_that_names_her(field, stored):
    jane = make_user("jane", first_name="Jane", last_name="Smith")
    study = make_study("1.2.3.4", "P1")
    Study.objects.filter(pk=study.pk).update(**{field: stored})
    assert can_see_study(jane, study)


def test_a_similar_name_is_not_enough():
    jane = make_user("jane", first_name="Jane", last_name="Smith")
    assert not can_see_study(jane, make_study("1.2.3.4", "P1", referring="Smithers^Jane"))
    assert not can_see_study(jane, make_study("1.2.3.5", "P2", referring="Smith^Janet"))


def test_a_user_without_a_name_matches_no_unnamed_study():
    nameless = make_user("nameless")
    assert not can_see_study(nameless, make_study("1.2.3.4", "P1", referring="^"))
    assert not can_see_study(nameless, make_study("1.2.3.5", "P2"))


def test_group_description_matching_the_institution_shows_its_private_studies():
    nurse = make_user("nurse", first_name="Nora", last_name="Nurse")
    group = UserGroup.objects.create(name="General", description="General Hospital")
    study = make_study("1.2.3.4", "P1", institution="GENERAL HOSPITAL")
    elsewhere = make_study("1.2.3.5", "P2", institution="City Clinic")
    assert not can_see_study(nurse, study)
    group.members.add(nurse)
    nurse = type(nurse).objects.get(pk=nurse.pk)
    assert can_see_study(nurse, study) and not can_see_study(nurse, elsewhere)


def test_view_privilege_through_a_group_shows_everything():
    reader = make_user("reader")
    group = UserGroup.objects.create(name="Radiologists", privileges=["view"])
    group.members.add(reader)
    make_study("1.2.3.4", "P1")
    assert Study.objects.visible_to(type(reader).objects.get(pk=reader.pk)).count() == 1


def test_a_disabled_user_sees_nothing():
    power = make_user("power", ["view"], is_active=False)
    make_study("1.2.3.4", "P1", public=True)
    assert Study.objects.visible_to(power).count() == 0


def test_making_a_patient_public_makes_all_its_studies_public():
    first = make_study("1.2.3.4", "P1")
    second = make_study("1.2.3.5", "P1")
    set_patient_public(first.patient, True)
    assert set(Study.objects.values_list("public", flat=True)) == {True}
    set_patient_public(Patient.objects.get(patient_id="P1"), False)
    assert set(Study.objects.values_list("public", flat=True)) == {False}
    assert second.patient_id == first.patient_id


def test_a_study_flag_reaches_the_patient_only_when_it_is_the_only_study():
    only = make_study("1.2.3.4", "ALONE")
    set_study_public(only, True)
    assert Patient.objects.get(patient_id="ALONE").public is True

    one = make_study("1.2.3.5", "TWO")
    make_study("1.2.3.6", "TWO")
    set_study_public(one, True)
    assert Patient.objects.get(patient_id="TWO").public is False
    assert Study.objects.get(study_instance_uid="1.2.3.6").public is False


def test_a_guessed_study_url_is_404_and_journaled_as_denied(client):
    from audit.models import Entry

    jane = make_user("jane", first_name="Jane", last_name="Smith")
    hidden = make_study("1.2.3.4", "P1", referring="Jones^Bob")
    client.force_login(jane)
    assert client.get(f"/notes/{hidden.study_instance_uid}/").status_code == 404
    assert client.get("/notes/9.9.9/").status_code == 404
    denied = Entry.objects.filter(username="jane", outcome="denied").order_by("id")
    assert [e.study_uid for e in denied] == ["1.2.3.4", "9.9.9"]


def test_a_group_sees_public_studies_and_its_institutions_as_its_members_do():
    public = make_study("1.2.9.1", "G1", public=True)
    ours = make_study("1.2.9.2", "G2", institution="st mary")
    other = make_study("1.2.9.3", "G3", institution="General Hospital")
    group = UserGroup.objects.create(name="stmary", description="St Mary")
    member = make_user("nurse")
    group.members.add(member)
    by_group = set(group_visible_studies(group))
    assert by_group == {public, ours} == set(Study.objects.visible_to(member))
    group.privileges = ["view"]
    assert set(group_visible_studies(group)) == {public, ours, other}
    assert not group_visible_studies(None).exists()
    assert set(group_visible_studies(UserGroup(name="nobody", description=""))) == {public}
