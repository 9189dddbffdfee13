"""The access matrix of every page and endpoint that shows or acts on one study, for each role
against a public, a private-own and a private-other study: the expected status follows from
the one privilege check and the one visibility rule, and nothing of a hidden study leaks.

Expected status: anonymous -> 302 to the login page; missing privilege -> 403; study not
visible to the user -> 404; otherwise 200 (pages) or 302 (POST actions)."""

import pytest

from pacsone.models import Instance
from tests.people import ROLES, VISIBLE, make_world_with_files

pytestmark = pytest.mark.django_db

# (method, URL template, privilege needed or None, status when allowed)
ROUTES = [
    ("get", "/studies/{uid}/", None, 200),
    ("get", "/studies/{uid}/series/{series}/", None, 200),
    ("get", "/studies/{uid}/series/{series}/viewer", None, 200),
    ("get", "/studies/{uid}/instances/{sop}/thumbnail", None, 200),
    ("get", "/studies/{uid}/instances/{sop}/frame", None, 200),
    ("get", "/studies/{uid}/instances/{sop}/header", None, 200),
    ("get", "/patients/{patient}/", None, 200),
    ("get", "/notes/{uid}/", None, 200),
    ("get", "/download/{uid}.zip", "download", 200),
    ("get", "/actions/study/{uid}/edit/", "modify", 200),
    ("post", "/actions/study/{uid}/mark/", "mark_study", 302),
    ("post", "/actions/study/{uid}/public/", "modify", 302),
    ("post", "/notes/{uid}/", None, 302),
]

# The privileges of each role (tests/people.py); root holds all.
HOLDS = {
    "anonymous": set(),
    "physician": set(),
    "power": {"view", "modify", "mark_study"},
    "sysadmin": {"system_admin", "monitor"},
    "root": {"view", "modify", "mark_study", "download", "export", "upload", "import"},
}


def expected_status(role, study, privilege, allowed_status):
    if role == "anonymous":
        return 302
    if privilege and privilege not in HOLDS[role]:
        return 403
    if study not in VISIBLE[role]:
        return 404
    return allowed_status


@pytest.fixture
def world(tmp_path):
    return make_world_with_files(tmp_path)


@pytest.mark.parametrize("method,url,privilege,allowed", ROUTES, ids=[f"{m} {u}" for m, u, _, _ in ROUTES])
def test_study_route_access(client, world, method, url, privilege, allowed):
    """Every role against every study on one route (one world per route keeps it quick)."""
    wrong = []
    for role in ROLES:
        user = world.users[role]
        client.logout()
        if user is not None:
            client.force_login(user)
        for study in ("public", "own", "other"):
            target = world.studies[study]
            instance = Instance.objects.select_related("series").get(series__study=target)
            path = url.format(uid=target.study_instance_uid, series=instance.series.series_instance_uid,
                              sop=instance.sop_instance_uid, patient=target.patient.pk)
            response = getattr(client, method)(path, {"text": "a note"} if method == "post" else None)
            expected = expected_status(role, study, privilege, allowed)
            if response.status_code != expected:
                wrong.append(f"{role} on {study}: {response.status_code}, expected {expected}")
                continue
            if expected == 302 and role == "anonymous" and not response["Location"].startswith("/accounts/login/"):
                wrong.append(f"{role} on {study}: redirected to {response['Location']}")
            if expected in (403, 404):
                body = b"".join(response.streaming_content) if response.streaming else response.content
                if target.patient.patient_id.encode() in body or target.patient.patient_name.encode() in body:
                    wrong.append(f"{role} on {study}: the refusal shows the patient")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_study_list_and_counts_show_only_visible_studies(client, world, role):
    user = world.users[role]
    if user is None:
        assert client.get("/").status_code == 302
        return
    client.force_login(user)
    page = client.get("/").content.decode()
    for name, study in world.studies.items():
        assert (study.patient.patient_id in page) == (name in VISIBLE[role]), (role, name)
    assert f"{len(VISIBLE[role])} in all" in page
    # Whole-archive figures only for those who see every study (View) or watch the server (Monitor).
    assert ("3</b> patients" in page) == (role in ("power", "sysadmin", "root"))
