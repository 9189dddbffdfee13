"""/healthz: 200 with a JSON body when the web server, the database and the storage answer."""

import shutil

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


def healthz(request):
    db_ok, db_detail = _database_ok()
    storage_ok, storage_detail = _storage_ok() if db_ok else (False, {"error": "database down"})
    healthy = db_ok and storage_ok
    body = {
        "status": "ok" if healthy else "error",
        "database": {"ok": db_ok, "vendor": db_detail},
        "storage": {"ok": storage_ok, **storage_detail},
    }
    return JsonResponse(body, status=200 if healthy else 503)
