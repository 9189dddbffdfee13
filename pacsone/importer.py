"""Import DICOM files from files, folders and zip files through the one ingest path."""

import os
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import media, storage
from .ingest import IngestResult, Origin, Outcome, PostIngestBatch, ingest_file

MAX_REASONS_KEPT = 20


@dataclass
class ImportSummary:
    counts: Counter = field(default_factory=Counter)
    bytes_stored: int = 0
    problems: list[str] = field(default_factory=list)
    not_on_media: int = 0  # files a DICOMDIR references that the media lacks

    def add_media_problem(self, problem: media.MediaProblem) -> None:
        self.not_on_media += problem.missing_file
        if len(self.problems) < MAX_REASONS_KEPT:
            self.problems.append(f"{problem.label}: {problem.reason}")

    @property
    def accepted(self) -> int:
        """Files now in the archive: stored, replaced, or there already."""
        return self.counts[Outcome.STORED] + self.counts[Outcome.REPLACED] + self.counts[Outcome.IGNORED]

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


Candidate = tuple[Path, str | None | media.MediaProblem]


def _walk(paths: list[Path]) -> Iterator[Candidate]:
    """(file, zip member or None) for every candidate under the given paths; (DICOMDIR,
    MediaProblem) for a file a DICOMDIR references that is missing."""
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dicomdir = media.dicomdir_among(Path(folder), files)
                if dicomdir is not None:
                    candidates, readable = _media_candidates(dicomdir)
                    yield from candidates
                    if readable:
                        dirs.clear()  # the DICOMDIR lists what this folder's media holds
                        continue
                for name in sorted(files):
                    yield from _expand(Path(folder) / name)
        elif media.is_dicomdir(path.name):
            yield from _media_candidates(path)[0]
        else:
            yield from _expand(path)


def _media_candidates(dicomdir: Path) -> tuple[list[Candidate], bool]:
    """The files a DICOMDIR references, and whether it could be read (if not, the one candidate
    says why, and the caller walks its folder file by file)."""
    try:
        entries = media.folder_files(dicomdir)
    except media.MediaError as error:
        return [(dicomdir, media.MediaProblem(str(dicomdir), f"{error}; its folder is imported file by file"))], False
    return [(dicomdir, entry) if isinstance(entry, media.MediaProblem) else (entry, None) for entry in entries], True


def _expand(path: Path) -> Iterator[Candidate]:
    if media.is_dicomdir(path.name):
        return  # an index of the media, not an image: read by _media_files, never stored
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in media.zip_members(archive):
                yield path, member
    else:
        yield path, None


def import_paths(
    paths: list[Path],
    origin: Origin,
    on_progress: Callable[[int], None] = lambda n: None,
    batch: PostIngestBatch | None = None,
    display_names: dict[str, str] | None = None,
) -> ImportSummary:
    """Import everything under `paths`. The follow-up work is queued at the end, or left in
    the caller's `batch` for the caller to flush. `display_names`: file name -> the name its
    owner knows it by (an upload is saved under a number), for the problems reported."""
    display_names = display_names or {}
    summary = ImportSummary()
    own_batch = batch is None
    batch = batch or PostIngestBatch()
    location = storage.default_location()
    for path, member in _walk(paths):
        if isinstance(member, media.MediaProblem):
            summary.add_media_problem(member)
            on_progress(1)
            continue
        shown = display_names.get(path.name, str(path))
        label = f"{shown}:{member}" if member else shown
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


def import_job(progress, paths: list[str], channel: str, username: str, remove_after: str = "",
               display_names: dict[str, str] | None = None) -> str:
    """A job (routing.jobs): import `paths` with a progress bar; `remove_after` is a staging
    folder (browser uploads) deleted when the import is done; `display_names` as for import_paths."""
    try:
        path_list = [Path(p) for p in paths]
        progress.start(count_candidates(path_list))
        summary = import_paths(path_list, Origin(channel, username=username), on_progress=progress.advance,
                               display_names=display_names)
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
        f"{counts[Outcome.INVALID]} rejected, {counts[Outcome.FAILED]} failed"
        + (f", {summary.not_on_media} listed in a DICOMDIR but missing" if summary.not_on_media else ""),
        *summary.problems,
    ]
    if summary.total == 0:
        lines[0] = "no file found to import" + (
            f" ({summary.not_on_media} listed in a DICOMDIR but missing)" if summary.not_on_media else "")
    return "\n".join(lines)
