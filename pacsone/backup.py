"""`manage.py backup DEST` and `restore SRC`: a consistent snapshot of the index, the storage
manifest, the stored files and the note attachments; restored into empty folders and an empty
index, then checked by `verifystorage`.

The index is dumped by the database's own tool, not by Django's serialization: the engines'
dumps are the format their operators already know and restore with, they keep the schema,
indexes and sequences exactly, and they stream (Django's dumpdata holds whole tables of
instance headers in memory and takes hours at 100M rows).
- PostgreSQL: `pg_dump -Fc --snapshot=S`, where S is exported by our own REPEATABLE READ
  transaction; the manifest is read in that same transaction: dump and manifest are one snapshot.
- MariaDB/MySQL: `mariadb-dump --single-transaction` (one consistent snapshot); the manifest is
  read afterwards in a snapshot of its own, so it lists every instance of the dump (files are
  placed before their row is written) and perhaps a few newer ones (harmless extra files). An
  instance deleted in between is reported as missing.
- SQLite: its online backup API into a copy; the manifest is read from that copy.
Files are copied after the snapshot, each checked against its SHA-256 on the way. The journal
key is not copied on purpose (it must live apart from the data it protects): keep it, and the
secret key, with your other secrets.
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import storage
from .models import Attachment, Instance, StorageLocation

MANIFEST = "manifest.jsonl"
SUMMARY = "backup.json"
COPY_CHUNK = 1024 * 1024


class BackupError(Exception):
    """The backup or restore cannot be made as asked; the message says why."""


@dataclass
class Result:
    files: int = 0
    bytes: int = 0
    attachments: int = 0
    problems: list[str] = field(default_factory=list)


def _engine() -> str:
    return connection.vendor  # "postgresql", "mysql" or "sqlite"


def _db() -> dict:
    return connection.settings_dict


def _tool_env() -> dict:
    env = dict(os.environ)
    if _db().get("PASSWORD"):
        env["PGPASSWORD"] = env["MYSQL_PWD"] = _db()["PASSWORD"]
    return env


def _pg_args() -> list[str]:
    db = _db()
    return ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres"]


def _mysql_args() -> list[str]:
    db = _db()
    args = ["-h", db.get("HOST") or "127.0.0.1", "-P", str(db.get("PORT") or 3306)]
    return args + (["-u", db["USER"]] if db.get("USER") else [])


def _run(argv: list[str], **kwargs) -> None:
    try:
        done = subprocess.run(argv, env=_tool_env(), capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise BackupError(f"{argv[0]} is not installed (Debian: postgresql-client or mariadb-client)") from None
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip()[-2000:]}")


def _manifest_rows(instances, locations) -> list[dict]:
    names = {location.pk: location.name for location in locations}
    return [{"sop": sop, "location": names[location_id], "path": path, "size": size, "sha256": sha256}
            for sop, location_id, path, size, sha256 in
            instances.order_by("pk").values_list("sop_instance_uid", "storage_location_id", "file_path",
                                                 "file_size", "sha256").iterator(chunk_size=5000)]


def _snapshot_index(dest: Path) -> tuple[list[dict], list[dict]]:
    """Dump the index into `dest`; the manifest rows and the storage locations of that snapshot."""
    engine = _engine()
    if engine == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot = cursor.fetchone()[0]
            _run(["pg_dump", *_pg_args(), "-Fc", "--snapshot", snapshot, "-f", str(dest / "index.pgdump"), _db()["NAME"]])
            locations = list(StorageLocation.objects.all())
            return _manifest_rows(Instance.objects.all(), locations), _location_rows(locations)
    if engine == "mysql":
        with open(dest / "index.sql", "w") as out:
            _dump_mysql(out)
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with transaction.atomic():
            locations = list(StorageLocation.objects.all())
            return _manifest_rows(Instance.objects.all(), locations), _location_rows(locations)
    copy = dest / "index.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(copy)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    return _sqlite_manifest(copy)


def _dump_mysql(out) -> None:
    argv = ["mariadb-dump", *_mysql_args(), "--single-transaction", "--quick", "--hex-blob",
            "--default-character-set=utf8mb4", _db()["NAME"]]
    try:
        done = subprocess.run(argv, env=_tool_env(), stdout=out, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise BackupError("mariadb-dump is not installed (Debian: mariadb-client)") from None
    if done.returncode != 0:
        raise BackupError(f"mariadb-dump failed: {done.stderr.strip()[-2000:]}")


def _location_rows(locations) -> list[dict]:
    return [{"name": location.name, "path": location.path} for location in locations]


def _sqlite_manifest(copy: Path) -> tuple[list[dict], list[dict]]:
    """The manifest read from the copied SQLite index itself: exactly its snapshot."""
    index = sqlite3.connect(copy)
    try:
        location_table, instance_table = StorageLocation._meta.db_table, Instance._meta.db_table
        locations = {pk: (name, path) for pk, name, path in index.execute(f'SELECT id, name, path FROM "{location_table}"')}
        rows = [{"sop": sop, "location": locations[loc][0], "path": path, "size": size, "sha256": sha256}
                for sop, loc, path, size, sha256 in index.execute(
                    f'SELECT sop_instance_uid, storage_location_id, file_path, file_size, sha256 FROM "{instance_table}" '
                    "ORDER BY id")]
        return rows, [{"name": name, "path": path} for name, path in locations.values()]
    finally:
        index.close()


def _copy_checked(source, target: Path, expected_sha256: str) -> int:
    """Copy an open file to `target`, hashing it on the way; its size. BackupError on a mismatch."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while chunk := source.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise BackupError("checksum differs")
    return size


def backup(dest: Path, progress=lambda n: None) -> Result:
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new or empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    rows, locations = _snapshot_index(dest)
    by_name = {location.name: location for location in StorageLocation.objects.all()}
    result = Result()
    with open(dest / MANIFEST, "w") as manifest:
        for row in rows:
            manifest.write(json.dumps(row) + "\n")
            try:
                with storage.open_file(by_name[row["location"]], row["path"]) as source:
                    result.bytes += _copy_checked(source, dest / "storage" / row["location"] / row["path"], row["sha256"])
                result.files += 1
            except (KeyError, FileNotFoundError):
                result.problems.append(f"missing: {row['location']}:{row['path']} (SOP Instance UID {row['sop']})")
            except BackupError as error:
                result.problems.append(f"{error}: {row['location']}:{row['path']} (SOP Instance UID {row['sop']})")
            progress(1)
    attachments = settings.SHARED_DIR / "attachments"
    if attachments.is_dir():
        shutil.copytree(attachments, dest / "attachments")
        result.attachments = Attachment.objects.count()
    (dest / SUMMARY).write_text(json.dumps({
        "engine": _engine(), "created": timezone.now().isoformat(), "node": settings.PACS_NODE_NAME,
        "locations": locations, "files": result.files, "bytes": result.bytes, "problems": result.problems}, indent=1))
    return result


def _index_is_empty() -> bool:
    try:
        return not Instance.objects.exists()
    except Exception:
        return True  # no tables yet: a new database


def restore(src: Path, storage_dir: Path, progress=lambda n: None) -> Result:
    """Load the index into this (empty) database, put the files under `storage_dir/<location>`
    and point the storage locations there; the attachments go to the shared folder."""
    src, storage_dir = Path(src), Path(storage_dir).resolve()
    try:
        summary = json.loads((src / SUMMARY).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{src} holds no backup ({SUMMARY} is missing or unreadable)") from None
    if summary["engine"] != _engine():
        raise BackupError(f"the backup is of a {summary['engine']} index; this server uses {_engine()}: restore it "
                          "into the same kind of database")
    if not _index_is_empty():
        raise BackupError("this database already holds instances: restore into an empty database")
    if storage_dir.exists() and any(storage_dir.iterdir()):
        raise BackupError(f"{storage_dir} is not empty: restore the files into a new or empty folder")
    _load_index(src)
    result = Result()
    storage.forget_default_location()
    for saved in summary["locations"]:
        folder = storage_dir / saved["name"]
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        StorageLocation.objects.filter(name=saved["name"]).update(path=str(folder))
    locations = {location.name: location for location in StorageLocation.objects.all()}
    with open(src / MANIFEST) as manifest:
        for line in manifest:
            row = json.loads(line)
            copied = src / "storage" / row["location"] / row["path"]
            if not copied.is_file():
                continue  # reported as missing when the backup was made; verifystorage says so again
            location = locations[row["location"]]
            temp = storage.new_temp_path(location)
            with open(copied, "rb") as source:
                result.bytes += _copy_checked(source, temp, row["sha256"])
            storage.place(temp, location, row["path"], synced=True)
            result.files += 1
            progress(1)
    if (src / "attachments").is_dir():
        shutil.copytree(src / "attachments", settings.SHARED_DIR / "attachments", dirs_exist_ok=True)
        result.attachments = Attachment.objects.count()
    return result


def _load_index(src: Path) -> None:
    engine = _engine()
    if engine == "postgresql":
        _run(["pg_restore", *_pg_args(), "--clean", "--if-exists", "--no-owner", "-d", _db()["NAME"],
              str(src / "index.pgdump")])
    elif engine == "mysql":
        with open(src / "index.sql") as dump:
            try:
                done = subprocess.run(["mariadb", *_mysql_args(), _db()["NAME"]], stdin=dump, env=_tool_env(),
                                      capture_output=True, text=True)
            except FileNotFoundError:
                raise BackupError("the mariadb client is not installed (Debian: mariadb-client)") from None
            if done.returncode != 0:
                raise BackupError(f"mariadb failed: {done.stderr.strip()[-2000:]}")
    else:
        connection.ensure_connection()
        source = sqlite3.connect(src / "index.sqlite3")
        try:
            source.backup(connection.connection)
        finally:
            source.close()
    connection.close()  # the next query sees the restored tables afresh
