"""The Node table (pacsone/nodes.py), `runpacs --node` refusals, schedules that run once
(pacsone/schedules.run_once) and the load balancer's health endpoints."""

import datetime
import subprocess
import sys
import types
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone

from pacsone import nodes
from pacsone.models import Node, ScheduleRun
from pacsone.schedules import run_once
from pacsone.supervisor import Child, write_status
from tests.helpers import server_env
from tests.people import make_user

pytestmark = pytest.mark.django_db

CALLS = []


def counted_task():
    CALLS.append(1)
    return "ran"


def test_runpacs_refuses_a_node_on_sqlite(tmp_path):
    env = server_env()
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'alone.sqlite3'}", PACS_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "runpacs", "--node", "a", "--only", "web"],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SQLite is a file on one machine" in result.stderr and "DATABASE_URL=postgres://" in result.stderr


@pytest.fixture
def server_database(monkeypatch):
    """check_can_join as on PostgreSQL or MariaDB, whatever database this run uses."""
    monkeypatch.setattr(nodes, "connection", types.SimpleNamespace(vendor="postgresql"))


def live_node(name: str, host: str = "other-host", fingerprint: str | None = None) -> Node:
    now = timezone.now()
    return Node.objects.create(name=name, host=host, started_at=now, last_seen=now,
                               keys_fingerprint=fingerprint if fingerprint is not None else nodes.keys_fingerprint())


def test_a_node_with_other_keys_or_a_taken_name_is_refused(server_database):
    nodes.check_can_join("b")  # alone: fine
    live_node("a")
    nodes.check_can_join("b")  # same keys: fine
    with pytest.raises(nodes.NodeRefused, match="node a runs with another secret key or journal key"):
        Node.objects.filter(name="a").update(keys_fingerprint="0123456789abcdef")
        nodes.check_can_join("b")
    Node.objects.filter(name="a").update(keys_fingerprint=nodes.keys_fingerprint())
    with pytest.raises(nodes.NodeRefused, match="a node named a on other-host"):
        nodes.check_can_join("a")
    Node.objects.filter(name="a").update(last_seen=timezone.now() - datetime.timedelta(hours=1))
    nodes.check_can_join("a")  # a silent node's name may be taken over (the machine was replaced)


def test_heartbeats_and_silent_nodes(settings):
    settings.PACS_NODE_NAME = "here"
    started = timezone.now()
    nodes.heartbeat("here", [Child("web", ["true"]).status()], started)
    live_node("gone").processes = []
    Node.objects.filter(name="gone").update(last_seen=timezone.now() - datetime.timedelta(minutes=5),
                                            processes=[{"name": "web", "pid": 7, "running": True}])
    nodes.heartbeat("stopped", [], started, stopped=True)
    state = {node["name"]: node for node in nodes.nodes_state()}
    assert state["here"]["state"] == "up" and state["here"]["this"] and state["here"]["processes"][0]["name"] == "web"
    assert state["gone"]["state"] == "silent" and state["gone"]["processes"] == [
        {"name": "web", "pid": 7, "running": False}]
    assert state["stopped"]["state"] == "stopped"


def test_a_database_that_does_not_answer_does_not_stop_the_supervisor(caplog):
    with mock.patch.object(Node.objects, "update_or_create", side_effect=RuntimeError("down")):
        nodes.heartbeat("here", [], timezone.now())
    assert "node heartbeat not written" in caplog.text


def test_a_schedule_runs_once_per_intended_time(settings):
    CALLS.clear()
    func = f"{__name__}.counted_task"
    intended = "2026-12-01T02:00:00+00:00"
    settings.PACS_NODE_NAME = "node-a"
    assert run_once(func, intended=intended) == "ran"
    settings.PACS_NODE_NAME = "node-b"
    assert run_once(func, intended=intended) == "already run by node node-a"
    assert run_once(func, intended="2026-12-01T02:01:00+00:00") == "ran"
    assert run_once(func) == "ran"  # by hand: no schedule time to share
    assert len(CALLS) == 3 and ScheduleRun.objects.filter(func=func).count() == 2


def test_every_schedule_goes_through_run_once():
    from django_q.models import Schedule

    from pacsone.schedules import ENTRIES, ensure_schedules

    ensure_schedules()
    schedules = Schedule.objects.all()
    assert schedules.count() == len([entry for entry in ENTRIES if entry.wanted()])
    assert {(s.func, s.intended_date_kwarg) for s in schedules} == {("pacsone.schedules.run_once", "intended")}


def test_nodes_starting_at_once_leave_one_schedule_of_each(monkeypatch):
    """Two nodes' start-ups both found no schedule and both made one (seen on PostgreSQL): each
    keeps the first made, whichever order their steps ran in."""
    from django_q.models import Schedule

    from pacsone.schedules import ENTRIES, ensure_schedules

    wanted = [entry.name for entry in ENTRIES if entry.wanted()]
    real_create = Schedule.objects.create

    def create_and_other_node_too(**fields):  # the other node's create lands right after ours
        made = real_create(**fields)
        real_create(**fields)
        return made

    monkeypatch.setattr(Schedule.objects, "create", create_and_other_node_too)
    ensure_schedules()
    monkeypatch.undo()
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(wanted)

    # Duplicates left by an earlier start are removed at the next one, the first kept.
    first = Schedule.objects.get(name="daily statistics report")
    Schedule.objects.create(name=first.name, func=first.func, args=first.args, schedule_type=first.schedule_type,
                            next_run=first.next_run)
    assert ensure_schedules() and Schedule.objects.get(name=first.name).pk == first.pk


def test_the_monitor_shows_every_node_to_monitor_users_only(client):
    live_node("node-a", fingerprint="")
    Node.objects.filter(name="node-a").update(processes=[{"name": "dicom:PACSONE:11112#1", "pid": 42, "running": True}])
    client.force_login(make_user("watcher", ["monitor"]))
    data = client.get("/monitor/data.json").json()
    assert [(n["name"], n["state"], n["processes"][0]["pid"]) for n in data["nodes"]] == [("node-a", "up", 42)]
    assert b'id="nodes"' in client.get("/monitor/").content
    client.force_login(make_user("viewer", ["view"]))
    assert client.get("/monitor/data.json").status_code == 403


@pytest.fixture
def status_file():
    """The supervisor status file a test publishes, removed afterwards (other tests expect none)."""
    from pacsone.supervisor import status_path

    yield status_path()
    status_path().unlink(missing_ok=True)


def test_liveness_and_readiness(client, status_file):
    assert client.get("/healthz/live").json() == {"status": "ok", "node": settings.PACS_NODE_NAME}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200 and ready.json()["listeners"] == {"ok": True, "supervised": False}
    dicom, hl7 = Child("dicom:PACSONE:11112#1", ["true"]), Child("hl7:2575", ["true"])
    write_status([dicom, hl7])  # published by this live process, as the supervisor does: neither runs
    ready = client.get("/healthz/ready")
    assert ready.status_code == 503
    assert ready.json()["listeners"]["down"] == ["dicom:PACSONE:11112#1", "hl7:2575"]
    with mock.patch("pacsone.web.health._database_ok", return_value=(False, "OperationalError")):
        assert client.get("/healthz/ready").status_code == 503
