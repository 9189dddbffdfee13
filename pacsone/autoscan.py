"""Auto-scan import: a configured folder is scanned periodically (django-q2 schedule); new DICOM
files and zip files go through the one ingest path and are then moved aside.

- imported files move to `<folder>/.done/<date>/…`;
- files that are not DICOM or are rejected move to `<folder>/.failed/<date>/…`, with a
  `.reason.txt` beside them;
- a file that failed on our side (database or disk down) stays and is retried at the next
  scans, at most MAX_ATTEMPTS times, then moves to `.failed` too: never retried forever;
- a file changed in the last SETTLE_SECONDS may still be being written and waits for a later scan.
"""

import fcntl
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .importer import import_paths
from .ingest import Origin, Outcome, PostIngestBatch

log = logging.getLogger(__name__)

SETTLE_SECONDS = 10
MAX_ATTEMPTS = 3
DONE, FAILED = ".done", ".failed"
ATTEMPTS_FILE = ".autoscan-attempts.json"
LOCK_FILE = ".autoscan.lock"


@dataclass
class ScanReport:
    imported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    skipped_busy: bool = False

    def __str__(self) -> str:
        if self.skipped_busy:
            return "another scan is running"
        return (f"{len(self.imported)} imported, {len(self.failed)} moved to {FAILED}, "
                f"{len(self.retrying)} to retry, {len(self.waiting)} still being written")


def candidates(folder: Path) -> list[Path]:
    """Files under `folder`, except our own bookkeeping and what was moved aside."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in (DONE, FAILED))
        found.extend(Path(root) / name for name in sorted(files) if not name.startswith(".autoscan"))
    return found


@contextmanager
def exclusive(folder: Path):
    """Yield True if this scan holds the folder's lock (scans never overlap)."""
    with open(folder / LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def move_aside(folder: Path, path: Path, kind: str, reason: str = "") -> Path:
    target = folder / kind / timezone.localdate().isoformat() / path.relative_to(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the same name scanned twice in a day: keep both
        target = target.with_name(f"{target.name}.{int(time.time() * 1000)}")
    shutil.move(path, target)
    if reason:
        target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target


def scan_folder(folder: Path | None = None) -> ScanReport:
    folder = Path(folder or settings.PACS_AUTOSCAN_DIR)
    report = ScanReport()
    if not folder.is_dir():
        log.error("auto-scan folder missing folder=%s", folder)
        report.failed.append(f"{folder}: not a folder")
        return report
    with exclusive(folder) as mine:
        if not mine:
            report.skipped_busy = True
            return report
        attempts_path = folder / ATTEMPTS_FILE
        attempts = json.loads(attempts_path.read_text()) if attempts_path.exists() else {}
        origin = Origin("autoscan", username="auto-scan")
        batch = PostIngestBatch()  # one journal entry per study and scan
        now = time.time()
        for path in candidates(folder):
            name = str(path.relative_to(folder))
            if now - path.stat().st_mtime < SETTLE_SECONDS:
                report.waiting.append(name)
                continue
            summary = import_paths([path], origin, batch=batch)
            counts = summary.counts
            accepted = sum(counts[o] for o in Outcome if o.accepted)
            if counts[Outcome.FAILED]:
                attempts[name] = attempts.get(name, 0) + 1
                if attempts[name] < MAX_ATTEMPTS:
                    report.retrying.append(name)
                    continue
                reason = f"failed {MAX_ATTEMPTS} times: " + "; ".join(summary.problems)
                move_aside(folder, path, FAILED, reason)
                report.failed.append(name)
            elif accepted == 0:
                move_aside(folder, path, FAILED, "; ".join(summary.problems) or "no DICOM instance in it")
                report.failed.append(name)
            else:
                move_aside(folder, path, DONE, "; ".join(summary.problems))
                report.imported.append(name)
            attempts.pop(name, None)
            for problem in summary.problems:
                log.warning("auto-scan problem %s", problem)
        attempts_path.write_text(json.dumps(attempts))
        batch.flush()
    if report.imported or report.failed:
        log.info("auto-scan folder=%s %s", folder, report)
    return report


def run_scheduled_scan() -> str:
    """The django-q2 schedule's entry point."""
    if not settings.PACS_AUTOSCAN_DIR:
        return "auto-scan is off"
    return str(scan_folder())
