"""DICOM media (PS3.10): a DICOMDIR and the files it references, in a folder or in a ZIP.

The DICOMDIR is read with pydicom's FileSet, which checks that it is a Media Storage Directory
with a valid record tree. Every file its records reference is imported, whatever its name: media
file IDs are upper case without extension (`DICOM/ST000001/IM000001`). The other files on the
media (a viewer, autorun.inf, an HTML index) are left alone. A file ID is matched to a name
case-insensitively and without an ISO 9660 version (`;1`): a CD mounted or copied on Linux often
shows `dicom/st000001/im000001;1`. A referenced file missing from the media is reported, not
fatal; a DICOMDIR that cannot be read is reported and its folder imported file by file.
"""

import re
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.multival import MultiValue

DICOMDIR = "DICOMDIR"
_VERSION_SUFFIX = re.compile(r";\d*$")


class MediaError(Exception):
    """A DICOMDIR that cannot be read."""


@dataclass(frozen=True)
class MediaProblem:
    """A file a DICOMDIR references that the media lacks (`missing_file`), or a DICOMDIR that
    cannot be read."""

    label: str
    reason: str
    missing_file: bool = False


def media_name(name: str) -> str:
    """A file or folder name as a media file ID component: upper case, no ISO 9660 version."""
    return _VERSION_SUFFIX.sub("", name).rstrip(".").upper()


def is_dicomdir(name: str) -> bool:
    return media_name(name) == DICOMDIR


def dicomdir_among(folder: Path, names: Iterable[str]) -> Path | None:
    """The DICOMDIR among a folder's file names, if there is one."""
    for name in sorted(names):
        if is_dicomdir(name):
            return folder / name
    return None


def referenced_file_ids(dicomdir: Path) -> list[tuple[str, ...]]:
    """The file IDs (components of a relative path) that the DICOMDIR's records reference, in
    the order of its records."""
    try:
        ds = dcmread(dicomdir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FileSet warns of every referenced file it cannot find
            FileSet(ds)  # checks the Media Storage Directory and its record tree
        records = ds.get("DirectoryRecordSequence") or []
    except Exception as error:
        raise MediaError(f"unreadable DICOMDIR: {error}") from None
    file_ids = []
    for record in records:
        value = record.get("ReferencedFileID")
        if not value:
            continue
        components = tuple(str(c).strip() for c in value) if isinstance(value, MultiValue) else (str(value).strip(),)
        # Some writers put the whole path in one component.
        components = tuple(part for c in components for part in re.split(r"[\\/]", c) if part)
        if components:
            file_ids.append(components)
    return file_ids


def _is_plain_name(component: str) -> bool:
    return component not in (".", "..") and "/" not in component and "\\" not in component


class _FolderIndex:
    """Finds a file ID under a folder, exactly or by media name; each folder listed once."""

    def __init__(self, root: Path):
        self.root = root
        self.resolved_root = root.resolve()
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = sorted(p.name for p in folder.iterdir())
            except OSError:
                names = []
            listing: dict[str, str] = {}
            for name in names:
                listing.setdefault(media_name(name), name)
            self._listings[folder] = listing
        return self._listings[folder]

    def find(self, file_id: tuple[str, ...]) -> Path | None:
        if not all(_is_plain_name(c) for c in file_id):
            return None
        path = self.root
        for component in file_id:
            exact = path / component
            if exact.exists():
                path = exact
                continue
            name = self._listing(path).get(media_name(component))
            if name is None:
                return None
            path = path / name
        # A symbolic link on the media must not lead outside it.
        if not path.is_file() or not path.resolve().is_relative_to(self.resolved_root):
            return None
        return path


def folder_files(dicomdir: Path) -> list[Path | MediaProblem]:
    """The files a DICOMDIR in a folder references (a MediaProblem for each that is missing)."""
    index = _FolderIndex(dicomdir.parent)
    found: list[Path | MediaProblem] = []
    for file_id in referenced_file_ids(dicomdir):
        path = index.find(file_id)
        found.append(path if path is not None else _missing(dicomdir, file_id))
    return found


def _missing(dicomdir, file_id: tuple[str, ...]) -> MediaProblem:
    return MediaProblem(f"{dicomdir}: {'/'.join(file_id)}", "referenced by the DICOMDIR but not on the media",
                        missing_file=True)


def zip_members(archive: zipfile.ZipFile) -> Iterator[str | MediaProblem]:
    """The members of a ZIP to import: under each folder holding a DICOMDIR (a CD zipped), the
    files it references; everywhere else, every file."""
    members = [info.filename for info in archive.infolist() if not info.is_dir()]
    parts_of = {member: PurePosixPath(member.replace("\\", "/")).parts for member in members}
    by_media_path = {tuple(media_name(p) for p in parts): member for member, parts in parts_of.items()}
    media_folders = []
    for member, parts in parts_of.items():
        if not is_dicomdir(parts[-1]):
            continue
        try:
            file_ids = _zip_file_ids(archive, member)
        except MediaError as error:
            yield MediaProblem(f"{archive.filename}:{member}", f"{error}; its folder is imported file by file")
            continue
        folder = tuple(media_name(p) for p in parts[:-1])
        media_folders.append(folder)
        for file_id in file_ids:
            found = by_media_path.get(folder + tuple(media_name(c) for c in file_id))
            yield found if found is not None else _missing(f"{archive.filename}:{member}", file_id)
    for member, parts in parts_of.items():
        folder = tuple(media_name(p) for p in parts[:-1])
        if is_dicomdir(parts[-1]) or any(folder[:len(media)] == media for media in media_folders):
            continue
        yield member


def _zip_file_ids(archive: zipfile.ZipFile, member: str) -> list[tuple[str, ...]]:
    """The file IDs of a DICOMDIR inside a ZIP (FileSet reads it from a file of its own)."""
    with tempfile.TemporaryDirectory(prefix="dicomdir-") as folder:
        copy = Path(folder) / DICOMDIR
        try:
            with archive.open(member) as source, open(copy, "wb") as target:
                shutil.copyfileobj(source, target)
        except (OSError, zipfile.BadZipFile, RuntimeError) as error:
            raise MediaError(f"unreadable DICOMDIR: {error}") from None
        return referenced_file_ids(copy)
