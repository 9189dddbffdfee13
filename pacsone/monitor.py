"""The live monitor's data: the server's processes, recent DICOM activity and recent problems.

Read from what the server already writes, so the DICOM path pays nothing for it: the
supervisor's status file, the log file's last lines, and the index (instances per minute); every
node's processes from the Node table its supervisor writes (pacsone/nodes.py).
"""

import datetime
import json
import os
import re
from collections import deque

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from .models import Instance
from .nodes import nodes_state
from .supervisor import status_path

LOG_TAIL_BYTES = 512 * 1024
EVENTS_KEPT = 50
THROUGHPUT_MINUTES = 60

LOG_LINE = re.compile(r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (?P<level>[A-Z]+) (?P<logger>\S+) pid=(?P<pid>\d+) (?P<message>.*)$")
FIELD = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")


def _fields(message: str) -> dict[str, str]:
    return {key: value.strip("'\"") for key, value in FIELD.findall(message)}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_states() -> dict:
    """The supervisor's children as it last published them; `running` is False for all when
    the supervisor itself is gone."""
    try:
        body = json.loads(status_path().read_text())
    except (OSError, ValueError):
        return {"supervisor": False, "children": []}
    alive = _pid_alive(body.get("pid")) and not body.get("stopping")
    for child in body["children"]:
        child["running"] = alive and child["running"] and _pid_alive(child["pid"])
    return {"supervisor": alive, "children": body["children"]}


def _tail_lines(path, max_bytes: int = LOG_TAIL_BYTES) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > max_bytes else lines  # the first may be cut


def log_events(lines: list[str]) -> dict[str, list[dict]]:
    """Associations, stored instances, rejections and problems, newest first."""
    kinds = {name: deque(maxlen=EVENTS_KEPT) for name in ("associations", "stored", "rejected", "problems")}
    for line in lines:
        match = LOG_LINE.match(line)
        if not match:
            continue
        when, level, message = match["when"], match["level"], match["message"]
        fields = _fields(message)
        if message.startswith("association established"):
            kinds["associations"].append({"when": when, "event": "established", **fields})
        elif message.startswith("association rejected"):
            kinds["associations"].append({"when": when, "event": "rejected", **fields})
        elif message.startswith("ingest rejected"):
            kinds["rejected"].append({"when": when, **fields})
        elif message.startswith("ingest ") and fields.get("sop"):
            kinds["stored"].append({"when": when, "outcome": message.split()[1], **fields})
        if level in ("WARNING", "ERROR", "CRITICAL"):
            kinds["problems"].append({"when": when, "level": level, "logger": match["logger"], "message": message[:300]})
    return {name: list(reversed(events)) for name, events in kinds.items()}


def throughput(minutes: int = THROUGHPUT_MINUTES) -> list[dict]:
    """Instances received per minute over the last `minutes` minutes, oldest first."""
    now = timezone.now().replace(second=0, microsecond=0)
    since = now - datetime.timedelta(minutes=minutes - 1)
    rows = (
        Instance.objects.filter(received_at__gte=since)
        .annotate(minute=TruncMinute("received_at"))
        .values("minute")
        .annotate(count=Count("id"))
    )
    counts = {row["minute"]: row["count"] for row in rows}
    return [
        {"minute": (since + datetime.timedelta(minutes=i)).isoformat(), "count": counts.get(since + datetime.timedelta(minutes=i), 0)}
        for i in range(minutes)
    ]


def snapshot() -> dict:
    events = log_events(_tail_lines(settings.LOG_DIR / "pacsone.log"))
    return {"time": timezone.now().isoformat(), "processes": process_states(), "nodes": nodes_state(),
            "throughput": throughput(), **events}
