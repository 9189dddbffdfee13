"""Import DICOM files from files, folders and zip files through the one ingest path.

Limits: a ZIP is refused before anything is extracted when its members would expand past
PACS_ZIP_MAX_EXPANDED_MB in all, or past PACS_ZIP_MAX_RATIO times its compressed size (a "ZIP
bomb": 1 MB of zeros that expands to 1 GiB); extraction itself stops at the declared sizes.
Imports started from the web (import_job with `roots_only`) read only below PACS_IMPORT_ROOTS:
each path, and each file found under it, is resolved (symlinks followed) before the check.
"""

import os
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from django.conf import settings
from pydicom import dcmread

from audit.journal import Action, record
from audit.journal import Outcome as JournalOutcome

from . import media, storage
from .ingest import IngestResult, Origin, Outcome, PostIngestBatch, ingest_file
from .humanize import count

MAX_REASONS_KEPT = 20
# Below this many expanded bytes, a ZIP is never refused for its compression ratio.
RATIO_CHECK_FROM_BYTES = 1024 * 1024
# The one answer for a path that is missing, unreadable or outside the import roots: which of
# these it is must not be learnable from outside (no existence oracle).
NOT_IMPORTABLE = "is not a folder, DICOMDIR or ZIP file in the import folders"


class ZipRefused(Exception):
    """A ZIP over the expansion limits; nothing of it was extracted."""


class ExpansionLimit(Exception):
    """A member expanded past its declared size."""


def check_zip(archive: zipfile.ZipFile) -> None:
    """ZipRefused when the members would expand past the configured total or ratio."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    expanded = sum(m.file_size for m in members)
    compressed = sum(m.compress_size for m in members)
    limit = settings.PACS_ZIP_MAX_EXPANDED_MB * 1024 * 1024
    if expanded > limit:
        raise ZipRefused(f"it expands to {expanded // (1024 * 1024)} MB, more than {settings.PACS_ZIP_MAX_EXPANDED_MB} MB")
    if expanded > RATIO_CHECK_FROM_BYTES and expanded > settings.PACS_ZIP_MAX_RATIO * max(compressed, 1):
        raise ZipRefused(f"it expands {expanded // max(compressed, 1)} times its size, more than "
                         f"{settings.PACS_ZIP_MAX_RATIO} times")


def zip_problem(path: Path) -> str | None:
    """Why the ZIP at `path` is refused, or None when it may be imported (or is not a ZIP)."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip(archive)
    except ZipRefused as refused:
        return f"ZIP refused: {refused}"
    except (zipfile.BadZipFile, OSError):
        return None  # not a ZIP after all: ingested (and judged) as a file
    return None


def copy_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    """Extract one member, never writing more than its declared size."""
    written = 0
    with archive.open(member) as src, open(target, "wb") as dst:
        while chunk := src.read(1024 * 1024):
            written += len(chunk)
            if written > member.file_size:
                raise ExpansionLimit(f"a member expands past its declared {member.file_size} bytes")
            dst.write(chunk)


def import_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.PACS_IMPORT_ROOTS]


def below_roots(path: Path, roots: list[Path]) -> bool:
    """`path`, with its symlinks resolved, is one of the roots or below one."""
    resolved = path.resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def importable(path_text: str) -> Path | None:
    """The path a web import may read: absolute, existing and below an import root; else None
    (one answer for every reason, see NOT_IMPORTABLE)."""
    path = Path(path_text)
    if not path_text or not path.is_absolute():
        return None
    try:
        if below_roots(path, import_roots()) and (path.is_dir() or path.is_file()):
            return path.resolve()
    except (OSError, RuntimeError):  # unreadable, or a symlink loop
        return None
    return None

# Channels where a person adds files: what they add may not join a patient they may not see.
PERSON_CHANNELS = ("upload", "import")
NOT_YOURS = "refused: its study or Patient ID is already in the archive for studies you may not see"


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

    def refuse(self, label: str, reason: str) -> None:
        self.counts[Outcome.INVALID] += 1
        if len(self.problems) < MAX_REASONS_KEPT:
            self.problems.append(f"{label}: {reason}")

    def add(self, label: str, result: IngestResult, size: int) -> None:
        self.counts[result.outcome] += 1
        if result.outcome in (Outcome.STORED, Outcome.REPLACED):
            self.bytes_stored += size
        if not result.outcome.accepted and len(self.problems) < MAX_REASONS_KEPT:
            self.problems.append(f"{label}: {result.outcome.value}: {result.reason}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Refused:
    """A candidate that is not read: a ZIP over the limits, a file outside the import roots."""

    reason: str


def count_candidates(paths: list[Path], roots: list[Path] | None = None) -> int:
    """How many files the import will look at (folders walked, zip members counted)."""
    return sum(1 for _ in _walk(paths, roots))


Candidate = tuple[Path, str | None | media.MediaProblem | Refused]


def _walk(paths: list[Path], roots: list[Path] | None = None) -> Iterator[Candidate]:
    """(file, zip member or None) for every candidate under the given paths; (DICOMDIR,
    MediaProblem) for a file a DICOMDIR references that is missing; with `roots`, (file,
    Refused) for a file whose real path is outside them, which is never opened."""
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
                    yield from _expand(Path(folder) / name, roots)
        elif media.is_dicomdir(path.name):
            yield from _media_candidates(path, roots)[0]
        else:
            yield from _expand(path, roots)


def _media_candidates(dicomdir: Path, roots: list[Path] | None = None) -> tuple[list[Candidate], bool]:
    """The files a DICOMDIR references, and whether it could be read (if not, the one candidate
    says why, and the caller walks its folder file by file)."""
    try:
        entries = media.folder_files(dicomdir)
    except media.MediaError as error:
        return [(dicomdir, media.MediaProblem(str(dicomdir), f"{error}; its folder is imported file by file"))], False
    candidates: list[Candidate] = []
    for entry in entries:
        if isinstance(entry, media.MediaProblem):
            candidates.append((dicomdir, entry))
        elif roots is not None and not below_roots(entry, roots):
            candidates.append((entry, Refused("outside the import folders")))
        else:
            candidates.append((entry, None))
    return candidates, True


def _expand(path: Path, roots: list[Path] | None) -> Iterator[Candidate]:
    if media.is_dicomdir(path.name):
        return  # an index of the media, not an image: read by _media_files, never stored
    if roots is not None and not below_roots(path, roots):
        yield path, Refused("outside the import folders")
        return
    if zipfile.is_zipfile(path):
        if problem := zip_problem(path):
            yield path, Refused(problem)
            return
        with zipfile.ZipFile(path) as archive:
            for member in media.zip_members(archive):
                yield path, member
    else:
        yield path, None


def _label(path: Path, tops: list[Path]) -> str:
    """A file's name relative to the folder the import was given: messages show no server path."""
    for top in tops:
        if path == top:
            return path.name
        if path.is_relative_to(top):
            return str(path.relative_to(top))
    return path.name


def import_paths(
    paths: list[Path],
    origin: Origin,
    on_progress: Callable[[int], None] = lambda n: None,
    batch: PostIngestBatch | None = None,
    display_names: dict[str, str] | None = None,
    roots: list[Path] | None = None,
    on_file: Callable[[str, IngestResult], None] | None = None,
) -> ImportSummary:
    """Import everything under `paths` (only below `roots` when given). The follow-up work is
    queued at the end, or left in the caller's `batch` for the caller to flush.
    `display_names`: file name -> the name its owner knows it by (an upload is saved under a
    number), for the problems reported; other files are named relative to the folder given.
    `on_file(label, result)`: called for every file read (per-file results of an upload)."""
    display_names = display_names or {}
    summary = ImportSummary()
    own_batch = batch is None
    batch = batch or PostIngestBatch()
    location = storage.default_location()
    tops = [p for p in paths if p.is_dir()]
    guard = _AddGuard(origin)
    for path, member in _walk(paths, roots):
        if isinstance(member, media.MediaProblem):
            summary.add_media_problem(member)
            on_progress(1)
            continue
        shown = display_names.get(path.name) or _label(path, tops)
        if isinstance(member, Refused):
            summary.refuse(shown, member.reason)
            on_progress(1)
            continue
        label = f"{shown}:{member}" if member else shown
        if member is None:
            size = path.stat().st_size
            result, keys = guard.refusal(path)
            result = result or ingest_file(path, origin, batch=batch)
        else:
            temp = storage.new_temp_path(location)  # never named after the member's name
            try:
                with zipfile.ZipFile(path) as archive:
                    copy_member(archive, archive.getinfo(member), temp)
            except (ExpansionLimit, zipfile.BadZipFile, OSError) as error:
                temp.unlink(missing_ok=True)
                summary.refuse(label, f"not extracted: {error}" if isinstance(error, ExpansionLimit)
                               else "not extracted: damaged ZIP member")
                on_progress(1)
                continue
            size = temp.stat().st_size
            result, keys = guard.refusal(temp)
            if result is None:
                result = ingest_file(temp, origin, adopt=True, batch=batch)
            else:
                temp.unlink(missing_ok=True)
        guard.accepted(keys, result)
        summary.add(label, result, size)
        if on_file is not None:
            on_file(label, result)
        on_progress(1)
    if own_batch:
        batch.flush()
    return summary


class _AddGuard:
    """For uploads and imports by a person without View: a file may not join a patient or a
    study already here that they may not see (pacsone.access.may_add_to). What this run itself
    added stays theirs to add to (the second image of a new study joins the first)."""

    def __init__(self, origin: Origin):
        from accounts.models import User

        self.origin = origin
        self.person = None
        if origin.channel in PERSON_CHANNELS and origin.username:
            self.person = User.objects.filter(username=origin.username).first()
        self.added: set[tuple[str, ...]] = set()

    def refusal(self, path: Path) -> tuple[IngestResult | None, tuple]:
        """(a journaled refusal or None, the file's keys to pass to `accepted`)."""
        from .access import may_add_to

        if self.person is None:
            return None, ()
        try:
            ds = dcmread(path, stop_before_pixels=True, force=True,
                         specific_tags=["PatientID", "IssuerOfPatientID", "StudyInstanceUID"])
            patient_id = str(ds.get("PatientID", "") or "").strip()
            issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
            study_uid = str(ds.get("StudyInstanceUID", "") or "").strip()
        except Exception:
            return None, ()  # unreadable: the ingest path rejects it with its reason
        keys = (("study", study_uid), ("patient", patient_id, issuer))
        if keys[0] in self.added or may_add_to(self.person, patient_id, issuer, study_uid,
                                                new_patient=keys[1] in self.added):
            return None, keys
        channel = self.origin.channel
        record(Action(channel), user=self.person, patient_id=patient_id[:64], study_uid=study_uid[:64],
               target=f"{channel} of a file", outcome=JournalOutcome.DENIED, detail=NOT_YOURS)
        return IngestResult(Outcome.INVALID, NOT_YOURS), keys

    def accepted(self, keys: tuple, result: IngestResult) -> None:
        if keys and result.outcome.accepted:
            self.added.update(keys)


def import_job(progress, paths: list[str], channel: str, username: str, remove_after: str = "",
               display_names: dict[str, str] | None = None, roots_only: bool = False) -> str:
    """A job (routing.jobs): import `paths` with a progress bar; `remove_after` is a staging
    folder (browser uploads) deleted when the import is done; `display_names` as for
    import_paths; `roots_only` (the web Import) reads only below the import roots, checked
    again here as the job runs."""
    try:
        roots = import_roots() if roots_only else None
        path_list = [Path(p) for p in paths]
        if roots is not None and not all(importable(str(p)) for p in path_list):
            return f"the path {NOT_IMPORTABLE}"
        progress.start(count_candidates(path_list, roots))
        summary = import_paths(path_list, Origin(channel, username=username), on_progress=progress.advance,
                               display_names=display_names, roots=roots)
    finally:
        if remove_after:
            shutil.rmtree(remove_after, ignore_errors=True)
    rejected = summary.counts[Outcome.INVALID] + summary.counts[Outcome.UNREADABLE] + summary.counts[Outcome.FAILED]
    if rejected:
        progress.advance(0, failed=rejected)
    return summary_message(summary)


def summary_message(summary: ImportSummary) -> str:
    """An import's result in words: the counts, then the problems (a job's message)."""
    counts = summary.counts
    lines = [
        f"{count(summary.total, 'file', 'files')}: {counts[Outcome.STORED]} stored, {counts[Outcome.REPLACED]} replaced, "
        f"{counts[Outcome.IGNORED]} already in the archive, {counts[Outcome.UNREADABLE]} not DICOM, "
        f"{counts[Outcome.INVALID]} rejected, {counts[Outcome.FAILED]} failed"
        + (f", {summary.not_on_media} listed in a DICOMDIR but missing" if summary.not_on_media else ""),
        *summary.problems,
    ]
    if summary.total == 0:
        lines[0] = "no file found to import" + (
            f" ({summary.not_on_media} listed in a DICOMDIR but missing)" if summary.not_on_media else "")
    return "\n".join(lines)
