"""Health endpoints for load balancers and monitoring, without login (they name no patient).

- /healthz: 200 with a JSON body when the web server, the database and the storage answer.
- /healthz/live: 200 whenever this web process answers (a restart decision: nothing else).
- /healthz/ready: may this node take traffic? The database answers, the storage folder takes a
  file, and every DICOM SCP worker and the HL7 listener the supervisor started on this node is
  running; 503 otherwise. A TCP load balancer in front of the DICOM port checks this URL on the
  web port (docs/deployment.md): a bare TCP connect to the DICOM port only says the socket is
  open, which it stays while the supervisor holds it even when no worker serves it.
"""

import shutil

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from .. import storage


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:
        return False, f"{type(exc).__name__}"


def _storage_ok() -> tuple[bool, dict]:
    try:
        location = storage.default_location()
        folder = storage.temp_dir(location)
        probe = storage.new_temp_path(location)
        probe.unlink()
        usage = shutil.disk_usage(folder)
        return True, {"free_bytes": usage.free, "used_percent": round(100 * usage.used / usage.total, 1)}
    except Exception as exc:
        return False, {"error": type(exc).__name__}


def _listeners_ok() -> tuple[bool, dict]:
    """This node's DICOM and HL7 processes as its supervisor last published them; a web server
    started without the supervisor has none to check."""
    from ..monitor import process_states

    states = process_states()
    listeners = [child for child in states["children"] if child["name"].startswith(("dicom:", "hl7:"))]
    if not states["supervisor"]:
        return True, {"supervised": False}
    down = sorted(child["name"] for child in listeners if not child["running"])
    return not down, {"supervised": True, "running": len(listeners) - len(down), "down": down}


def _checks() -> tuple[bool, dict]:
    db_ok, db_detail = _database_ok()
    storage_ok, storage_detail = _storage_ok() if db_ok else (False, {"error": "database down"})
    return db_ok and storage_ok, {"database": {"ok": db_ok, "vendor": db_detail},
                                  "storage": {"ok": storage_ok, **storage_detail}}


def healthz(request):
    healthy, body = _checks()
    return JsonResponse({"status": "ok" if healthy else "error", **body}, status=200 if healthy else 503)


def live(request):
    return JsonResponse({"status": "ok", "node": settings.PACS_NODE_NAME})


def ready(request):
    healthy, body = _checks()
    listeners_ok, listeners = _listeners_ok()
    ready_now = healthy and listeners_ok
    return JsonResponse({"status": "ready" if ready_now else "not ready", "node": settings.PACS_NODE_NAME,
                         **body, "listeners": {"ok": listeners_ok, **listeners}}, status=200 if ready_now else 503)
