"""The same durability on both sides of the storage benchmark, and the evidence for it.

Ours answers a C-STORE Success once the file's data, its name in its folder and its index row
are on disk (docs/decisions/ingest-durability-order.md). Orthanc 1.10 as Debian ships it
syncs the file's data only: its SQLite index runs in WAL mode with SYNCHRONOUS=NORMAL (the
commit is not synced), and neither the file's name nor the folders it makes are synced. On
MariaDB and PostgreSQL its plugins' commits are durable (innodb_flush_log_at_trx_commit=1,
synchronous_commit=on), its files' names still are not.

"Orthanc durable" runs the same Orthanc with durable_orthanc.c preloaded (built here with cc):
SQLite commits with SYNCHRONOUS=FULL, and each synced file's folder is synced after it, as is
the parent of each folder it makes. Its 65,536 storage folders (two levels of two hex digits)
are in place before it starts, as a long-running Orthanc has them, so that it does not pay a
folder's creation and sync per file of a fresh archive. The benchmark reports ours against
Orthanc durable (the same durability) and against Orthanc as shipped.

sync_census() is the evidence: strace counts the syncs each server makes per stored instance,
sorted into the file's data, folder names, and the index.
"""

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SHIM_SOURCE = BENCH_DIR / "durable_orthanc.c"
SHIM_LIBRARY = BENCH_DIR / "out" / "libdurable_orthanc.so"
DURABLE_DIR_VARIABLE = "PACS_BENCH_DURABLE_DIR"


def shim_library() -> Path:
    """durable_orthanc.c compiled (again when the source is newer); RuntimeError without cc."""
    if SHIM_LIBRARY.exists() and SHIM_LIBRARY.stat().st_mtime >= SHIM_SOURCE.stat().st_mtime:
        return SHIM_LIBRARY
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) to build bench/durable_orthanc.c (apt-get install gcc)")
    SHIM_LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(SHIM_LIBRARY), str(SHIM_SOURCE), "-ldl"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {SHIM_SOURCE.name} failed: {result.stderr.strip()}")
    return SHIM_LIBRARY


def durable_environment(storage: Path) -> dict[str, str]:
    """What Orthanc's environment needs to run durably with its files in `storage`."""
    return {"LD_PRELOAD": str(shim_library()), DURABLE_DIR_VARIABLE: str(storage)}


ORTHANC_FOLDERS = BENCH_DIR / "out" / "orthanc-folders"  # made once, lent to each durable Orthanc


def lend_orthanc_folders(storage: Path) -> None:
    """Orthanc's two levels of storage folders (00/00 .. ff/ff), as a long-running one has them,
    put in place as `storage` (a rename). Made once and kept between runs: deleting 65,536
    folders takes minutes on this machine (a discard per freed block)."""
    if not (ORTHANC_FOLDERS / ".complete").exists():
        for first in range(256):
            for second in range(256):
                (ORTHANC_FOLDERS / f"{first:02x}" / f"{second:02x}").mkdir(parents=True, exist_ok=True)
        (ORTHANC_FOLDERS / ".complete").touch()
    storage.parent.mkdir(parents=True, exist_ok=True)
    ORTHANC_FOLDERS.rename(storage)


def take_back_orthanc_folders(storage: Path) -> None:
    """The folders back after the run, with Orthanc's (truncated) files still in them until
    empty_orthanc_folders(): freeing their inodes now would slow the next server (servers.retire)."""
    storage.rename(ORTHANC_FOLDERS)


def empty_orthanc_folders() -> None:
    """Remove the files Orthanc left in the lent folders: at the end of a run."""
    if ORTHANC_FOLDERS.exists():
        subprocess.run(["find", str(ORTHANC_FOLDERS), "-mindepth", "3", "-type", "f", "-delete"], check=False)


def strace_available() -> bool:
    return shutil.which("strace") is not None


SYNC_CALL = re.compile(r"\b(fsync|fdatasync)\((\d+)<([^>]*)>")


def classify(path: str, storage: Path) -> str:
    """'file data', 'folder names' or 'index' for a synced path; 'other' for anything else."""
    if path.endswith((".sqlite3-wal", ".sqlite3", "/index-wal", "/index", "-journal")):
        return "index"
    if path == str(storage) or path.startswith(f"{storage}/"):
        # read while the server still runs: a synced path that is no folder is a file (or a
        # temp file renamed since)
        return "folder names" if Path(path).is_dir() else "file data"
    return "other"


def sync_census(pid: int, storage: Path, send, instances: int, trace_file: Path) -> dict[str, float]:
    """Syncs per stored instance by kind, counted by strace on `pid` (and its threads) while
    `send()` stores `instances` instances."""
    tracer = subprocess.Popen(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace_file),
                               "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    try:
        send()
        time.sleep(0.5)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    counts = Counter()
    for line in trace_file.read_text(errors="replace").splitlines():
        match = SYNC_CALL.search(line)
        if match:
            counts[classify(match[3], storage)] += 1
    return {kind: counts[kind] / instances for kind in ("file data", "folder names", "index", "other")}


def database_settings(backend: str) -> str:
    """The database server's commit durability settings, as it reports them."""
    from servers import run_sql  # here: servers imports this module

    if backend == "mariadb":
        rows = run_sql("mariadb", "SHOW VARIABLES WHERE Variable_name IN ('innodb_flush_log_at_trx_commit', 'log_bin')")
    else:
        rows = [(name, run_sql("postgresql", f"SHOW {name}")[0][0]) for name in ("fsync", "synchronous_commit")]
    return ", ".join(f"{name}={value}" for name, value in rows)
