"""Several nodes, one archive: each node's supervisor publishes itself in the Node table.

A node is a `manage.py runpacs --node NAME` on one machine; all nodes share the database, the
task broker (Redis), the storage folder (PACS_STORAGE_DIR) and the shared folder
(PACS_SHARED_DIR). Nothing a node keeps in its own data folder is needed by another (logs,
rendered-image cache, its supervisor's status file, its job runners' pid files and lock).

- `check_can_join(name)`: refuses a second node on SQLite (a file on one machine), and a node
  whose secret key or journal key differs from the other live nodes'.
- `heartbeat(...)`: the supervisor's row, written every PACS_NODE_HEARTBEAT_SECONDS.
- `nodes_state()`: every node with its processes; one not heard from for three heartbeats is
  `silent` (its machine or supervisor died).
"""

import datetime
import hashlib
import logging
import os
import socket

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Node

log = logging.getLogger(__name__)

SILENT_AFTER_HEARTBEATS = 3


class NodeRefused(Exception):
    """This node cannot join the archive as configured; the message says what to change."""


def keys_fingerprint() -> str:
    """A short hash over the keys every node must share; not enough to recover either key."""
    from audit.chain import journal_key

    digest = hashlib.sha256(b"pacsone-node-keys\0" + settings.SECRET_KEY.encode() + b"\0" + journal_key())
    return digest.hexdigest()[:16]


def silent_before() -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=SILENT_AFTER_HEARTBEATS * settings.PACS_NODE_HEARTBEAT_SECONDS)


def live_others(name: str):
    return Node.objects.filter(stopped=False, last_seen__gte=silent_before()).exclude(name=name)


def check_can_join(name: str) -> None:
    if connection.vendor == "sqlite":
        raise NodeRefused(
            "several nodes need a database server every node reaches: SQLite is a file on one machine. "
            "Set DATABASE_URL=postgres://... or mysql://... (docs/deployment.md), or start runpacs without --node.")
    if not name or len(name) > 64:
        raise NodeRefused(f"a node name has 1 to 64 characters, got {name!r}")
    mine = keys_fingerprint()
    for other in live_others(name):
        if other.keys_fingerprint and other.keys_fingerprint != mine:
            raise NodeRefused(
                f"node {other.name} runs with another secret key or journal key: every node needs the same "
                "PACS_SECRET_KEY and the same journal key file (PACS_JOURNAL_KEY_FILE), or users are logged out "
                "between nodes and the journal chain cannot be verified")
    same_name = live_others("").filter(name=name).exclude(host=socket.gethostname()).first()
    if same_name is not None:
        raise NodeRefused(f"a node named {name} on {same_name.host} was heard from at {same_name.last_seen:%H:%M:%S}: "
                          "each node needs its own name (PACS_NODE_NAME or --node)")


def heartbeat(name: str, processes: list[dict], started: datetime.datetime, stopped: bool = False) -> None:
    """Write this node's row; a database that does not answer is logged, never fatal (the
    supervisor keeps its children up whatever the database does)."""
    try:
        Node.objects.update_or_create(name=name, defaults={
            "host": socket.gethostname()[:255], "supervisor_pid": os.getpid(), "started_at": started,
            "last_seen": timezone.now(), "stopped": stopped, "processes": processes,
            "keys_fingerprint": keys_fingerprint()})
    except Exception as error:
        log.warning("node heartbeat not written node=%s error=%s", name, type(error).__name__)
        connection.close()  # a broken connection is opened afresh at the next heartbeat


def nodes_state() -> list[dict]:
    """Every node, silent ones marked, for the Monitor page."""
    limit = silent_before()
    return [{
        "name": node.name, "host": node.host, "pid": node.supervisor_pid,
        "started": node.started_at.isoformat(), "last_seen": node.last_seen.isoformat(),
        "state": "stopped" if node.stopped else ("up" if node.last_seen >= limit else "silent"),
        "processes": node.processes if not node.stopped and node.last_seen >= limit else
        [{**p, "running": False} for p in node.processes],
        "this": node.name == settings.PACS_NODE_NAME,
    } for node in Node.objects.all()]
