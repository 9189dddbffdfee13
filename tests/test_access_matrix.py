"""The access matrix of every URL the project serves (walked from the URL resolver, so a new page
or endpoint fails here until it is classified), for every role, against a private study the role
may see and one it may not:

- the answer is right: a missing privilege is 403, a study (patient, image, attachment, job) the
  role may not see is the same 404 as a missing one, otherwise the route's own answer;
- every refusal writes exactly one journal entry (outcome denied), and every allowed access to
  patient data writes its entry;
- a refusal shows nothing of the patient.

Each case runs in a transaction rolled back afterwards, so actions (delete, publish) do not
leak into the next case. Anonymous visitors are tests/test_every_url_needs_login.py's."""

from dataclasses import dataclass
from typing import Callable

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import get_resolver

from accounts.tokens import issue_token
from audit.models import Entry, Outcome
from pacsone import storage
from pacsone.models import Instance, Printer, RemoteAE
from pacsone.notes import do_add_note
from routing.models import Job, RoutingRule
from tests.helpers import free_port
from tests.people import EVERY_ROLE, VISIBLE, make_world_with_files
from tests.test_every_url_needs_login import walk

pytestmark = pytest.mark.django_db

OK, FOUND, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = 200, 302, 403, 404, 405
# The privileges of each role (tests/people.py); root holds all of them.
HOLDS = {
    "root": {"view", "modify", "mark_study", "forward", "query", "move", "download", "export", "import",
             "upload", "monitor", "change_storage", "system_admin", "print"},
    "power": {"view", "modify", "mark_study"},
    "physician": set(), "member": set(), "outsider": set(),
    "modify_only": {"modify"},
    "sysadmin": {"system_admin", "monitor"},
}
PRIVATE = ("own", "other")  # "own": seen by Jane and the group's members; "other": only by View


@dataclass
class Route:
    method: str
    path: str  # with {uid} {series} {sop} {patient} {attachment} {job} {jane} {group} {ae} {entry}
    needs: str | None = None  # a privilege, "root", or None (any logged-in user)
    study: bool = False  # the path or the form names one of the private studies
    allowed: int = OK
    journaled: bool = False  # an allowed answer writes a journal entry (patient data, changes)
    data: dict | None = None
    hidden: int = NOT_FOUND  # the answer when the study is not visible
    expect: Callable | None = None  # (role, study) -> status, for rules of their own (jobs)


def hidden_before_download(role, study):
    """DICOMweb retrieve: a study the caller may not see does not exist (404), whatever they
    hold; one they see needs Download (403 without)."""
    if study not in VISIBLE[role]:
        return NOT_FOUND
    return OK if "download" in HOLDS[role] or role == "root" else FORBIDDEN


def job_pages(role, study):
    """Jobs: the owner (root) and System Administration list them; others get 404."""
    return OK if role in ("root", "sysadmin") else NOT_FOUND


def job_result(role, study):
    """A job's result (the export ZIP) is its owner's alone."""
    return OK if role == "root" else NOT_FOUND


def job_change(role, study):
    """Retry/cancel from a page: those who list the job are sent back to the list; others 404."""
    return FOUND if role in ("root", "sysadmin") else NOT_FOUND


def job_change_api(role, study):
    """The API answers 409 for a job that cannot change (these are done); others 404."""
    return 409 if role in ("root", "sysadmin") else NOT_FOUND


def own_token(role, study):
    return FOUND if role == "root" else NOT_FOUND


def qido_in_study(role, study):
    """A QIDO search under a study's path: a hidden study's series are absent, not an error."""
    return OK


def ohif_page(role, study):
    from pacsone.dicomweb.viewer import ohif_dir

    return OK if (ohif_dir() / "index.html").is_file() else 503


DW = "dicomweb/studies/<str:study_uid>"
DW_SE = DW + "/series/<str:series_uid>"
DW_I = DW_SE + "/instances/<str:sop_uid>"
DW_PATH_I = "/dicomweb/studies/{uid}/series/{series}/instances/{sop}"


S = "studies/<str:study_uid>/"
ROUTES = {
    "": Route("get", "/", journaled=True),
    "patients/<int:pk>/": Route("get", "/patients/{patient}/", study=True, journaled=True),
    S: Route("get", "/studies/{uid}/", study=True, journaled=True),
    S + "series/<str:series_uid>/": Route("get", "/studies/{uid}/series/{series}/", study=True, journaled=True),
    S + "series/<str:series_uid>/viewer": Route("get", "/studies/{uid}/series/{series}/viewer", study=True,
                                                journaled=True),
    # Images a journaled page loads are covered by the page's entry.
    S + "instances/<str:sop_uid>/thumbnail": Route("get", "/studies/{uid}/instances/{sop}/thumbnail", study=True),
    S + "instances/<str:sop_uid>/frame": Route("get", "/studies/{uid}/instances/{sop}/frame", study=True),
    S + "instances/<str:sop_uid>/pixels": Route("get", "/studies/{uid}/instances/{sop}/pixels", study=True),
    S + "series/<str:series_uid>/pixels": Route("get", "/studies/{uid}/series/{series}/pixels?f={sop}:0", study=True),
    S + "series/<str:series_uid>/viewer.json": Route("get", "/studies/{uid}/series/{series}/viewer.json",
                                                     study=True, journaled=True),
    S + "instances/<str:sop_uid>/header": Route("get", "/studies/{uid}/instances/{sop}/header", study=True,
                                                journaled=True),
    S + "forward": Route("post", "/studies/{uid}/forward", "forward", True, FOUND, True, {"ae": "{ae}"}),
    "actions/study/<str:study_uid>/mark/": Route("post", "/actions/study/{uid}/mark/", "mark_study", True, FOUND,
                                                 True, {"read": "1"}),
    "actions/study/<str:study_uid>/public/": Route("post", "/actions/study/{uid}/public/", "modify", True, FOUND,
                                                   True, {"public": "1"}),
    "actions/study/<str:study_uid>/delete/": Route("post", "/actions/study/{uid}/delete/", "modify", True, FOUND,
                                                   True, {"confirm_study": "{uid}"}),
    "actions/study/<str:study_uid>/edit/": Route("get", "/actions/study/{uid}/edit/", "modify", True, OK, True),
    "actions/patient/<int:patient_pk>/public/": Route("post", "/actions/patient/{patient}/public/", "modify", True,
                                                      FOUND, True, {"public": "1"}),
    "export/": Route("post", "/export/", "export", True, FOUND, True, {"study": "{uid}"}, hidden=FOUND),
    # Bulk actions on selected studies (each action its privilege; here Mark Study).
    "actions/studies/": Route("post", "/actions/studies/", "mark_study", True, FOUND, True,
                              {"study": "{uid}", "action": "read"}, hidden=FOUND),
    "download/<str:study_uid>.zip": Route("get", "/download/{uid}.zip", "download", True, OK, True),
    "notes/<str:study_uid>/": Route("get", "/notes/{uid}/", study=True, journaled=True),
    "notes/attachment/<int:pk>/": Route("get", "/notes/attachment/{attachment}/", study=True, journaled=True),
    # Storage (System Administration) and Change Storage
    "actions/study/<str:study_uid>/legal-hold/": Route("post", "/actions/study/{uid}/legal-hold/", "system_admin",
                                                       True, FOUND, True, {"hold": "1"}),
    "actions/change-storage/": Route("post", "/actions/change-storage/", "change_storage", True, OK,
                                     data={"study": "{uid}"}, hidden=FOUND),
    "storage/": Route("get", "/storage/", "system_admin"),
    "storage/<int:pk>/": Route("get", "/storage/{location}/", "system_admin"),
    "storage/<int:pk>/current/": Route("post", "/storage/{location}/current/", "system_admin", allowed=FOUND,
                                       journaled=True),
    "storage/<int:pk>/purge/": Route("get", "/storage/{location}/purge/", "system_admin"),
    "storage/retention/": Route("post", "/storage/retention/", "system_admin", allowed=FOUND, journaled=True,
                                data={"modality": "CT", "keep_days": "30"}),
    # The world's attachment is text: shown inline only when an image, so 404 where it may be seen.
    "notes/attachment/<int:pk>/image": Route("get", "/notes/attachment/{attachment}/image", study=True,
                                             allowed=NOT_FOUND),
    "upload/": Route("get", "/upload/", "upload"),
    # An upload's results: only its owner's upload job; the job here is an export, so 404.
    "upload/<int:job_pk>/": Route("get", "/upload/{job}/", "upload", allowed=NOT_FOUND),
    "import/": Route("get", "/import/", "import"),
    "trash/": Route("get", "/trash/", "system_admin", journaled=True),
    # No study is in the trash here: System Administration gets the journaled 404 of a missing one.
    "trash/<int:pk>/restore/": Route("post", "/trash/0/restore/", "system_admin", allowed=NOT_FOUND),
    "trash/empty/": Route("get", "/trash/empty/", "system_admin"),
    "monitor/": Route("get", "/monitor/", "monitor"),
    "monitor/data.json": Route("get", "/monitor/data.json", "monitor"),
    "healthz": Route("get", "/healthz"),
    "healthz/live": Route("get", "/healthz/live"),
    "healthz/ready": Route("get", "/healthz/ready"),
    # The remote AE registry and remote search
    "aes/": Route("get", "/aes/", "system_admin"),
    "aes/add/": Route("get", "/aes/add/", "system_admin"),
    "aes/<int:pk>/": Route("get", "/aes/{ae}/", "system_admin"),
    "aes/<int:pk>/delete/": Route("get", "/aes/{ae}/delete/", "system_admin"),
    "aes/<int:pk>/echo/": Route("post", "/aes/{ae}/echo/", "system_admin", allowed=FOUND),
    "aes/<int:pk>/sync/": Route("get", "/aes/{ae}/sync/", "system_admin"),
    "aes/<int:pk>/sync/now/": Route("post", "/aes/{ae}/sync/now/", "system_admin", allowed=FOUND),
    # DICOM printers (System Administration) and printing (Print); the printer here is down
    "printers/": Route("get", "/printers/", "system_admin"),
    "printers/add/": Route("get", "/printers/add/", "system_admin"),
    "printers/<int:pk>/": Route("get", "/printers/{printer}/", "system_admin"),
    "printers/<int:pk>/delete/": Route("get", "/printers/{printer}/delete/", "system_admin"),
    "printers/<int:pk>/verify/": Route("post", "/printers/{printer}/verify/", "system_admin", allowed=FOUND,
                                       journaled=True),
    "print/select/": Route("post", "/print/select/", "print", True, FOUND, data={"study": "{uid}"}),
    "print/": Route("get", "/print/", "print"),
    # Nothing selected: no sheet to show.
    "print/sheet/<int:sheet>.png": Route("get", "/print/sheet/1.png", "print", allowed=NOT_FOUND),
    "remote/": Route("get", "/remote/", "query"),
    "remote/retrieve/": Route("post", "/remote/retrieve/", "move", allowed=FOUND,
                              data={"remote": "{ae}", "study": "1.2.3.4"}),
    # Jobs: an export of each private study, started by root
    "jobs/": Route("get", "/jobs/"),
    "jobs/<int:pk>/": Route("get", "/jobs/{job}/", study=True, expect=job_pages),
    "jobs/<int:pk>/status.json": Route("get", "/jobs/{job}/status.json", study=True, expect=job_pages),
    "jobs/<int:pk>/result": Route("get", "/jobs/{job}/result", study=True, journaled=True, expect=job_result),
    "jobs/bulk": Route("post", "/jobs/bulk", study=True, data={"job": "{job}", "action": "cancel"}, expect=job_change),
    "jobs/<int:pk>/<str:action>": Route("post", "/jobs/{job}/retry", study=True, expect=job_change),
    # The routing table
    "routing/": Route("get", "/routing/", "system_admin"),
    "routing/add/": Route("get", "/routing/add/", "system_admin"),
    "routing/<int:pk>/": Route("get", "/routing/{rule}/", "system_admin"),
    "routing/<int:pk>/remove": Route("post", "/routing/{rule}/remove", "system_admin", allowed=FOUND, journaled=True),
    "routing/<int:pk>/test": Route("get", "/routing/{rule}/test", "system_admin", journaled=True),
    # The journal: reading it is journaled too
    "journal/": Route("get", "/journal/", "system_admin", journaled=True),
    "journal/journal.csv": Route("get", "/journal/journal.csv", "system_admin", journaled=True),
    "journal/mail/": Route("get", "/journal/mail/", "system_admin"),
    # No e-mail server in the matrix: the test e-mail fails, journaled, and the page says why.
    "journal/mail/test/": Route("post", "/journal/mail/test/", "system_admin", allowed=FOUND, journaled=True),
    "statistics/": Route("get", "/statistics/", "monitor"),
    "statistics/statistics.csv": Route("get", "/statistics/statistics.csv", "monitor", journaled=True),
    # The report job fails at once without an e-mail server; its failure is journaled.
    "statistics/report/": Route("post", "/statistics/report/", "monitor", allowed=FOUND, journaled=True,
                                data={"preset": "7days"}),
    # Accounts
    "accounts/login/": Route("get", "/accounts/login/", allowed=FOUND),  # logged in already
    "accounts/logout/": Route("post", "/accounts/logout/", allowed=FOUND, journaled=True),
    "accounts/password/": Route("get", "/accounts/password/"),
    "accounts/tokens/": Route("get", "/accounts/tokens/"),
    # root's token: only root revokes it (another user's token is a 404, like a missing one)
    "accounts/tokens/<int:pk>/revoke/": Route("post", "/accounts/tokens/{token}/revoke/", allowed=FOUND,
                                              journaled=True, expect=own_token),
    "accounts/users/": Route("get", "/accounts/users/", "root"),
    "accounts/users/new/": Route("get", "/accounts/users/new/", "root"),
    "accounts/users/<int:pk>/": Route("get", "/accounts/users/{jane}/", "root"),
    "accounts/users/<int:pk>/password/": Route("get", "/accounts/users/{jane}/password/", "root"),
    "accounts/users/<int:pk>/active/": Route("post", "/accounts/users/{jane}/active/", "root", allowed=FOUND,
                                             journaled=True),
    "accounts/users/<int:pk>/delete/": Route("get", "/accounts/users/{jane}/delete/", "root"),
    "accounts/groups/": Route("get", "/accounts/groups/", "root"),
    "accounts/groups/new/": Route("get", "/accounts/groups/new/", "root"),
    "accounts/groups/<int:pk>/": Route("get", "/accounts/groups/{group}/", "root"),
    "accounts/groups/<int:pk>/delete/": Route("get", "/accounts/groups/{group}/delete/", "root"),
    # The REST API
    "api/": Route("get", "/api/"),
    "api/schema/": Route("get", "/api/schema/"),
    "api/docs/": Route("get", "/api/docs/"),
    "api/auth/token/": Route("get", "/api/auth/token/", allowed=NOT_ALLOWED),
    "api/statistics/": Route("get", "/api/statistics/", "monitor"),
    "api/^patients/$": Route("get", "/api/patients/", journaled=True),
    "api/^patients/(?P<pk>[^/.]+)/$": Route("get", "/api/patients/{patient}/", study=True, journaled=True),
    "api/^studies/$": Route("get", "/api/studies/", journaled=True),
    "api/^studies/(?P<study_instance_uid>[0-9.]+)/$": Route("get", "/api/studies/{uid}/", study=True,
                                                             journaled=True),
    "api/^jobs/$": Route("get", "/api/jobs/"),
    "api/^jobs/(?P<pk>[^/.]+)/$": Route("get", "/api/jobs/{job}/", study=True, expect=job_pages),
    "api/^jobs/(?P<pk>[^/.]+)/retry/$": Route("post", "/api/jobs/{job}/retry/", study=True, expect=job_change_api),
    "api/^jobs/(?P<pk>[^/.]+)/cancel/$": Route("post", "/api/jobs/{job}/cancel/", study=True, expect=job_change_api),
    "api/^routing-rules/$": Route("get", "/api/routing-rules/", "system_admin"),
    "api/^routing-rules/(?P<pk>[^/.]+)/$": Route("get", "/api/routing-rules/{rule}/", "system_admin"),
    "api/^journal/$": Route("get", "/api/journal/", "system_admin", journaled=True),
    "api/^journal/(?P<pk>[^/.]+)/$": Route("get", "/api/journal/{entry}/", "system_admin", journaled=True),
    # HL7 (hl7/): the message log, worklist and merges are patient data, journaled when read
    "hl7/": Route("get", "/hl7/", "system_admin", allowed=FOUND),
    "hl7/messages/": Route("get", "/hl7/messages/", "system_admin", journaled=True),
    "hl7/messages/<int:pk>/": Route("get", "/hl7/messages/{hl7_message}/", "system_admin", journaled=True),
    "hl7/messages/<int:pk>/reprocess/": Route("post", "/hl7/messages/{hl7_message}/reprocess/", "system_admin",
                                              allowed=FOUND, journaled=True),
    "hl7/destinations/": Route("get", "/hl7/destinations/", "system_admin"),
    "hl7/destinations/<int:pk>/remove/": Route("post", "/hl7/destinations/{hl7_destination}/remove/",
                                               "system_admin", allowed=FOUND, journaled=True),
    "hl7/worklist/": Route("get", "/hl7/worklist/", "system_admin", journaled=True),
    "hl7/merges/": Route("get", "/hl7/merges/", "system_admin", journaled=True),
    "hl7/merges/<int:pk>/undo/": Route("post", "/hl7/merges/{hl7_merge}/undo/", "system_admin", allowed=FOUND,
                                       journaled=True, data={"confirmed": "yes"}),
    "api/^hl7/messages/$": Route("get", "/api/hl7/messages/", "system_admin", journaled=True),
    "api/^hl7/messages/(?P<pk>[^/.]+)/$": Route("get", "/api/hl7/messages/{hl7_message}/", "system_admin",
                                                journaled=True),
    "api/^hl7/messages/(?P<pk>[^/.]+)/reprocess/$": Route("post", "/api/hl7/messages/{hl7_message}/reprocess/",
                                                          "system_admin", journaled=True),
    "api/^hl7/destinations/$": Route("get", "/api/hl7/destinations/", "system_admin"),
    "api/^hl7/destinations/(?P<pk>[^/.]+)/$": Route("get", "/api/hl7/destinations/{hl7_destination}/",
                                                    "system_admin"),
    "api/^hl7/reports/$": Route("get", "/api/hl7/reports/", journaled=True),
    "api/^worklist/$": Route("get", "/api/worklist/", "system_admin", journaled=True),
    "api/^worklist/(?P<pk>[^/.]+)/$": Route("get", "/api/worklist/{hl7_step}/", "system_admin", journaled=True),
    "api/^users/$": Route("get", "/api/users/", "root"),
    "api/^users/(?P<pk>[^/.]+)/$": Route("get", "/api/users/{jane}/", "root"),
    "api/^groups/$": Route("get", "/api/groups/", "root"),
    "api/^groups/(?P<pk>[^/.]+)/$": Route("get", "/api/groups/{group}/", "root"),
    # DICOMweb (pacsone/dicomweb): every request is journaled (views: the first in PACS_VIEW_JOURNAL_MINUTES);
    # bulk retrieve needs Download
    "dicomweb/studies": Route("get", "/dicomweb/studies", journaled=True),
    "dicomweb/series": Route("get", "/dicomweb/series", journaled=True),
    "dicomweb/instances": Route("get", "/dicomweb/instances", journaled=True),
    DW: Route("get", "/dicomweb/studies/{uid}", "download", True, OK, True, expect=hidden_before_download),
    DW + "/metadata": Route("get", "/dicomweb/studies/{uid}/metadata", study=True, journaled=True),
    DW + "/thumbnail": Route("get", "/dicomweb/studies/{uid}/thumbnail", study=True, journaled=True),
    DW + "/series": Route("get", "/dicomweb/studies/{uid}/series", study=True, journaled=True, expect=qido_in_study),
    DW + "/instances": Route("get", "/dicomweb/studies/{uid}/instances", study=True, journaled=True,
                             expect=qido_in_study),
    DW_SE: Route("get", "/dicomweb/studies/{uid}/series/{series}", "download", True, OK, True, expect=hidden_before_download),
    DW_SE + "/metadata": Route("get", "/dicomweb/studies/{uid}/series/{series}/metadata", study=True,
                               journaled=True),
    DW_SE + "/thumbnail": Route("get", "/dicomweb/studies/{uid}/series/{series}/thumbnail", study=True,
                                journaled=True),
    DW_SE + "/instances": Route("get", "/dicomweb/studies/{uid}/series/{series}/instances", study=True,
                                journaled=True, expect=qido_in_study),
    DW_I: Route("get", DW_PATH_I, "download", True, OK, True, expect=hidden_before_download),
    DW_I + "/metadata": Route("get", DW_PATH_I + "/metadata", study=True, journaled=True),
    DW_I + "/rendered": Route("get", DW_PATH_I + "/rendered", study=True, journaled=True),
    DW_I + "/thumbnail": Route("get", DW_PATH_I + "/thumbnail", study=True, journaled=True),
    DW_I + "/bulkdata/<path:tag_path>": Route("get", DW_PATH_I + "/bulkdata/7FE00010", study=True, journaled=True),
    DW_I + "/frames/<str:frame_list>": Route("get", DW_PATH_I + "/frames/1", study=True, journaled=True),
    DW_I + "/frames/<str:frame_list>/rendered": Route("get", DW_PATH_I + "/frames/1/rendered", study=True,
                                                      journaled=True),
    "wado": Route("get", "/wado?requestType=WADO&studyUID={uid}&seriesUID={series}&objectUID={sop}", study=True,
                  journaled=True),
    "viewer/app-config.js": Route("get", "/viewer/app-config.js"),
    "^viewer/(?P<name>.*)$": Route("get", "/viewer/", expect=ohif_page),
}


def served_routes() -> set[str]:
    # DRF's format-suffix twins (`.json`) of each API route lead to the same views.
    return {route for route in walk(get_resolver().url_patterns) if "format" not in route}


def test_every_url_is_in_the_matrix():
    assert set(ROUTES) == served_routes()


def expected_status(route: Route, role: str, study: str | None) -> int:
    if route.expect is not None:
        return route.expect(role, study)
    may = role == "root" if route.needs == "root" else (route.needs is None or route.needs in HOLDS[role])
    if not may:
        return FORBIDDEN
    if route.study and study not in VISIBLE[role]:
        return route.hidden
    return route.allowed


@pytest.fixture
def world(tmp_path):
    world = make_world_with_files(tmp_path)
    root = world.users["root"]
    ae = RemoteAE.objects.create(ae_title="NOWHERE", host="127.0.0.1", port=free_port(), is_queryable=True)
    rule = RoutingRule.objects.create(name="matrix", match_keyword="PatientID", match_pattern="NOBODY*")
    rule.destinations.set([ae])
    printer = Printer.objects.create(ae_title="DOWNPRINTER", host="127.0.0.1", port=free_port())
    world.values = {"ae": ae.pk, "printer": printer.pk, "jane": world.users["physician"].pk, "location": storage.default_location().pk,
                    "group": world.users["member"].pacs_groups.get().pk, "rule": rule.pk}
    world.per_study = {}
    for name in PRIVATE:
        study = world.studies[name]
        instance = Instance.objects.select_related("series").get(series__study=study)
        note = do_add_note(study, "see the report", [SimpleUploadedFile("report.txt", b"normal")],
                           acting_user=root)
        job = Job.objects.create(kind=Job.Kind.EXPORT, title="Export of 1 study", owner=root,
                                 state=Job.State.DONE, message="1 instance written",
                                 result_path=f"exports/{name}.zip")
        job.studies.set([study])
        (settings.DATA_DIR / "exports").mkdir(exist_ok=True)
        (settings.DATA_DIR / "exports" / f"{name}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
        world.per_study[name] = {
            "uid": study.study_instance_uid, "series": instance.series.series_instance_uid,
            "sop": instance.sop_instance_uid, "patient": study.patient.pk,
            "attachment": note.attachments.get().pk, "job": job.pk,
        }
    from hl7.models import Destination, Message, PatientMerge, ScheduledStep

    world.values["hl7_message"] = Message.objects.create(raw=b"PID|1", status=Message.Status.REJECTED).pk
    world.values["hl7_destination"] = Destination.objects.create(name="RIS", host="127.0.0.1", port=2575).pk
    world.values["hl7_step"] = ScheduledStep.objects.create(patient_id="WL1", accession_number="A1").pk
    merged_away, kept = world.studies["public"].patient, world.studies["other"].patient  # a merge that moved nothing
    world.values["hl7_merge"] = PatientMerge.objects.create(source=merged_away, target=kept,
                                                            source_patient_id=merged_away.patient_id,
                                                            target_patient_id=kept.patient_id).pk
    world.values["entry"] = Entry.objects.order_by("-id").first().pk
    world.values["token"] = issue_token(root, "matrix")[0].pk
    return world


class Rollback(Exception):
    """Undo one case's changes (a deleted or published study) before the next."""


def run_case(client, world, route: Route, role: str, study: str | None) -> list[str]:
    values = {**world.values, **world.per_study[study or "own"]}
    path = route.path.format(**values)
    data = {k: v.format(**values) for k, v in (route.data or {}).items()}
    client.force_login(world.users[role])
    before = Entry.objects.order_by("-id").first().pk
    response = getattr(client, route.method)(path, data or None)
    new = list(Entry.objects.filter(id__gt=before))
    denied = [entry for entry in new if entry.outcome == Outcome.DENIED]
    expected = expected_status(route, role, study)
    where = f"{role} on {study or '-'}"
    if response.status_code != expected:
        return [f"{where}: {response.status_code}, expected {expected}"]
    problems = []
    # Every 403 is journaled, and every 404 on patient data (a missing user or token is no secret).
    refused = expected == FORBIDDEN or (route.study and (expected == NOT_FOUND or (
        study not in VISIBLE[role] and route.expect is None)))
    if refused:
        if len(denied) != 1:
            problems.append(f"{where}: {len(denied)} denied journal entries, expected exactly one")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        patient = world.studies[study].patient if study else None
        if patient and (patient.patient_name.encode() in body or patient.patient_id.encode() in body):
            problems.append(f"{where}: the refusal shows the patient")
    elif expected == route.allowed and route.journaled and not [entry for entry in new if entry.outcome != Outcome.DENIED]:
        problems.append(f"{where}: allowed, but no journal entry")
    return problems


@pytest.mark.parametrize("route_name", sorted(ROUTES), ids=lambda name: name or "home")
def test_every_role_on_every_route(client, world, route_name):
    route = ROUTES[route_name]
    problems = []
    for role in EVERY_ROLE:
        for study in (PRIVATE if route.study else (None,)):
            try:
                with transaction.atomic():
                    problems += run_case(client, world, route, role, study)
                    raise Rollback
            except Rollback:
                pass
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", EVERY_ROLE)
def test_study_list_and_counts_show_only_visible_studies(client, world, role):
    client.force_login(world.users[role])
    page = client.get("/").content.decode()
    for name, study in world.studies.items():
        assert (study.patient.patient_id in page) == (name in VISIBLE[role]), (role, name)
    assert f"{len(VISIBLE[role])} in all" in page
    # Whole-archive figures only for those who see every study (View) or watch the server (Monitor).
    assert ("3</b> patients" in page) == (role in ("power", "sysadmin", "root"))
