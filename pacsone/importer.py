"""Import DICOM files from files, folders and zip files through the one ingest path."""

import os
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import storage
from .ingest import IngestResult, Origin, Outcome, PostIngestBatch, ingest_file

# DICOMDIR is an index of the media, not an image: it is read by the DICOMDIR import, not stored.
SKIPPED_NAMES = {"DICOMDIR"}
MAX_REASONS_KEPT = 20


@dataclass
class ImportSummary:
    counts: Counter = field(default_factory=Counter)
    bytes_stored: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, label: str, result: IngestResult, size: int) -> None:
        self.counts[result.outcome] += 1
        if result.outcome in (Outcome.STORED, Outcome.REPLACED):
            self.bytes_stored += size
        if not result.outcome.accepted and len(self.problems) < MAX_REASONS_KEPT:
            self.problems.append(f"{label}: {result.outcome.value}: {result.reason}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_candidates(paths: list[Path]) -> int:
    """How many files the import will look at (folders walked, zip members counted)."""
    return sum(1 for _ in _walk(paths))


def _walk(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """(file, zip member or None) for every candidate under the given paths."""
    for path in paths:
        if path.is_dir():
            for folder, _dirs, files in os.walk(path):
                for name in sorted(files):
                    yield from _expand(Path(folder) / name)
        else:
            yield from _expand(path)


def _expand(path: Path) -> Iterator[tuple[Path, str | None]]:
    if path.name.upper() in SKIPPED_NAMES:
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.is_dir() and Path(member.filename).name.upper() not in SKIPPED_NAMES:
                    yield path, member.filename
    else:
        yield path, None


def import_paths(
    paths: list[Path],
    origin: Origin,
    on_progress: Callable[[int], None] = lambda n: None,
    batch: PostIngestBatch | None = None,
) -> ImportSummary:
    """Import everything under `paths`. The follow-up work is queued at the end, or left in
    the caller's `batch` for the caller to flush."""
    summary = ImportSummary()
    own_batch = batch is None
    batch = batch or PostIngestBatch()
    location = storage.default_location()
    for path, member in _walk(paths):
        label = f"{path}:{member}" if member else str(path)
        if member is None:
            size = path.stat().st_size
            result = ingest_file(path, origin, batch=batch)
        else:
            temp = storage.new_temp_path(location)  # never named after the member's name
            with zipfile.ZipFile(path) as archive, archive.open(member) as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            size = temp.stat().st_size
            result = ingest_file(temp, origin, adopt=True, batch=batch)
        summary.add(label, result, size)
        on_progress(1)
    if own_batch:
        batch.flush()
    return summary


def import_job(progress, paths: list[str], channel: str, username: str, remove_after: str = "") -> str:
    """A job (routing.jobs): import `paths` with a progress bar; `remove_after` is a staging
    folder (browser uploads) deleted when the import is done."""
    try:
        path_list = [Path(p) for p in paths]
        progress.start(count_candidates(path_list))
        summary = import_paths(path_list, Origin(channel, username=username), on_progress=progress.advance)
    finally:
        if remove_after:
            shutil.rmtree(remove_after, ignore_errors=True)
    counts = summary.counts
    rejected = counts[Outcome.INVALID] + counts[Outcome.UNREADABLE] + counts[Outcome.FAILED]
    if rejected:
        progress.advance(0, failed=rejected)
    lines = [
        f"{summary.total} file(s): {counts[Outcome.STORED]} stored, {counts[Outcome.REPLACED]} replaced, "
        f"{counts[Outcome.IGNORED]} already in the archive, {counts[Outcome.UNREADABLE]} not DICOM, "
        f"{counts[Outcome.INVALID]} rejected, {counts[Outcome.FAILED]} failed",
        *summary.problems,
    ]
    if summary.total == 0:
        lines[0] = "no file found to import"
    return "\n".join(lines)
