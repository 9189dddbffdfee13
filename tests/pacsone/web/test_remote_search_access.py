"""A remote search against an AE that is this archive itself answers through the one visibility
rule: a user without View sees only the studies she may see here."""

from audit.models import Entry
from pacsone.models import RemoteAE
from tests.people import make_world


def test_searching_this_archive_as_a_remote_shows_only_visible_studies(client, scp):
    ae_title, port = scp
    world = make_world()
    jane = world.users["physician"]
    jane.privileges = ["query"]
    jane.save()
    self_ae = RemoteAE.objects.create(ae_title=ae_title, host="127.0.0.1", port=port, is_queryable=True)
    client.force_login(jane)
    page = client.get("/remote/", {"remote": self_ae.pk, "patient_id": "*"})
    assert page.status_code == 200, page.content
    found = {row["StudyInstanceUID"] for row in page.context["results"]}
    assert found == {world.studies["public"].study_instance_uid, world.studies["own"].study_instance_uid}
    assert "OTHER^PAT" not in page.content.decode()
    assert Entry.objects.filter(action="query", outcome="denied", username="jane").count() == 1


def test_a_user_with_view_sees_every_answer(client, scp):
    ae_title, port = scp
    world = make_world()
    power = world.users["power"]
    power.privileges = ["view", "query"]
    power.save()
    self_ae = RemoteAE.objects.create(ae_title=ae_title, host="127.0.0.1", port=port, is_queryable=True)
    client.force_login(power)
    page = client.get("/remote/", {"remote": self_ae.pk, "patient_id": "*"})
    assert len(page.context["results"]) == 3
