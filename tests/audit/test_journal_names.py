"""The journal page shows the patient's name and the study's description beside the bare
identifiers, to a reader who may see them (issue 17); to one who may not, only the identifiers."""

import pytest

from audit.journal import Action, record
from tests.people import make_user, make_world_with_files

pytestmark = pytest.mark.django_db


def test_the_journal_names_patients_and_studies_for_those_who_may_see_them(client, tmp_path):
    world = make_world_with_files(tmp_path)
    other = world.studies["other"]
    record(Action.VIEW, username="power", target="study", patient_id="OTH1", study_uid=other.study_instance_uid)
    record(Action.DELETE, username="power", target="study", patient_id="GONE1", study_uid="1.2.826.99.1")
    client.force_login(world.users["root"])
    page = client.get("/journal/").content.decode()
    assert "OTHER, Pat" in page and 'title="OTHER^PAT"' in page
    assert f'href="/studies/{other.study_instance_uid}/"' in page
    assert "1.2.826.99.1" in page and "GONE1" in page  # a deleted study keeps its identifiers
    admin = make_user("auditor", ["system_admin"])  # no View: identifiers only
    client.force_login(admin)
    page = client.get("/journal/").content.decode()
    assert "OTH1" in page and "OTHER, Pat" not in page and other.study_instance_uid in page
