"""The live monitor: Monitor privilege only; its data come from the supervisor's status file,
the log and the index."""

import json
import os

import pytest
from django.conf import settings

from pacsone import monitor
from pacsone.supervisor import Child, status_path, write_status
from tests.people import make_user

pytestmark = pytest.mark.django_db

LOG_LINES = [
    "2026-11-23 10:00:00,001 INFO pacsone.dicom.scp pid=11 association established calling_ae=CT1 address=10.0.0.7",
    "2026-11-23 10:00:00,010 INFO pacsone.ingest pid=11 ingest stored sop=1.2.3 study_pk=4 bytes=525000 ae=CT1 channel=dicom",
    "2026-11-23 10:00:00,020 WARNING pacsone.ingest pid=11 ingest rejected outcome=invalid channel=dicom ae=CT1 reason='missing StudyInstanceUID'",
    "2026-11-23 10:00:01,000 ERROR pacsone.supervisor pid=9 child died name=tasks exit=1 restarting_in=1.0s",
    "a line from somewhere else",
]


def test_log_events_are_sorted_into_kinds():
    events = monitor.log_events(LOG_LINES)
    assert events["associations"][0] == {"when": "2026-11-23 10:00:00", "event": "established",
                                         "calling_ae": "CT1", "address": "10.0.0.7"}
    assert events["stored"][0]["outcome"] == "stored" and events["stored"][0]["bytes"] == "525000"
    assert events["rejected"][0]["reason"] == "missing StudyInstanceUID"
    assert [p["level"] for p in events["problems"]] == ["ERROR", "WARNING"]  # newest first


def test_process_states_follow_the_supervisor_file():
    assert monitor.process_states() == {"supervisor": False, "children": []}
    child = Child("tasks", ["true"])
    write_status([child])  # written by this (live) process, as the supervisor would
    states = monitor.process_states()
    assert states["supervisor"] is True and states["children"][0]["name"] == "tasks"
    assert states["children"][0]["running"] is False
    body = json.loads(status_path().read_text())
    body["pid"] = 2**22 + 12345  # a supervisor that is gone
    status_path().write_text(json.dumps(body))
    assert monitor.process_states()["supervisor"] is False


def test_throughput_counts_instances_per_minute(tmp_path):
    from pacsone.importer import import_paths
    from pacsone.ingest import Origin
    from tests.helpers import make_file

    make_file(tmp_path, "a.dcm")
    make_file(tmp_path, "b.dcm")
    import_paths([tmp_path], Origin("import"))
    minutes = monitor.throughput()
    assert len(minutes) == monitor.THROUGHPUT_MINUTES and minutes[-1]["count"] == 2


@pytest.mark.parametrize("privileges,expected", [([], 403), (["monitor"], 200), (["system_admin"], 403)])
def test_monitor_needs_the_monitor_privilege(client, privileges, expected):
    client.force_login(make_user("someone", privileges))
    assert client.get("/monitor/").status_code == expected
    assert client.get("/monitor/data.json").status_code == expected


def test_monitor_data_as_json(client):
    settings.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.LOG_DIR / "pacsone.log", "a") as log:
        log.write("\n".join(LOG_LINES) + "\n")
    client.force_login(make_user("watcher", ["monitor"]))
    body = client.get("/monitor/data.json").json()
    assert {"processes", "throughput", "associations", "stored", "rejected", "problems"} <= set(body)
    assert any(a.get("calling_ae") == "CT1" for a in body["associations"])
    page = client.get("/monitor/")
    assert b"Live monitor" in page.content and b"monitor-initial" in page.content
