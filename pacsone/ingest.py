"""The one ingest path (DESIGN.md invariant 1).

Every way an instance enters the archive — C-STORE, `importdicom`, upload, STOW-RS, retrieve —
calls `ingest_file()`. It reads the header only, validates the UIDs, writes the file atomically
(temp file, fsync, rename), indexes it in one short transaction, and only then returns a
success outcome. Callers translate the outcome into a DICOM status or an HTTP code; follow-up
work is queued through a `PostIngestBatch`, never done on the caller's critical path.
"""

import concurrent.futures
import datetime
import enum
import logging
import re
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connections, transaction
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from . import deadlocks, storage, study_counts, wal_sync
from .dataset_structure import Truncated, check_file
from .dicom.net.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from .header_json import instance_header_json
from .index_lock import index_writer
from .instance_insert import insert_counted, insert_instance
from .models import Equipment, Instance, Patient, Series, Study, StorageLocation

log = logging.getLogger(__name__)

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
REQUIRED_UIDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID")
REQUIRED_UID_KEYS = {keyword: f"{tag_for_keyword(keyword):08X}" for keyword in REQUIRED_UIDS}  # DICOM JSON keys


class Outcome(enum.Enum):
    STORED = "stored"
    REPLACED = "replaced"  # a re-sent SOP Instance UID replaced the earlier copy
    IGNORED = "ignored"  # a re-sent SOP Instance UID was dropped, the first copy kept
    INVALID = "invalid"  # readable, but required attributes are missing or malformed
    UNREADABLE = "unreadable"  # not DICOM, or a header that cannot be parsed
    FAILED = "failed"  # our side failed (disk, database); the sender may retry

    @property
    def accepted(self) -> bool:
        return self in (Outcome.STORED, Outcome.REPLACED, Outcome.IGNORED)


@dataclass(frozen=True)
class Origin:
    """Who sent an instance and how; travels with it into the index and the logs."""

    channel: str  # "dicom", "import", "upload", ...
    ae_title: str = ""
    address: str = ""
    username: str = ""
    # An edited copy of an instance replaces the stored one whatever PACS_DUPLICATE_POLICY says.
    replace_duplicates: bool = False


@dataclass
class IngestResult:
    outcome: Outcome
    reason: str = ""
    sop_instance_uid: str = ""
    study_pk: int | None = None
    instance_pk: int | None = None


@dataclass
class PostIngestBatch:
    """Studies touched by one association or one import: the journal's STORE entry is written
    and the follow-up work (thumbnails) queued once per study when the batch is flushed."""

    study_pks: set[int] = field(default_factory=set)
    stored_counts: dict[int, int] = field(default_factory=dict)  # study pk -> instances stored
    origin: Origin | None = None
    # An association's end may be signalled twice at once (released, then connection closed).
    _flush_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: IngestResult, origin: Origin | None = None) -> None:
        if result.outcome in (Outcome.STORED, Outcome.REPLACED) and result.study_pk:
            self.study_pks.add(result.study_pk)
            self.stored_counts[result.study_pk] = self.stored_counts.get(result.study_pk, 0) + 1
            self.origin = origin or self.origin

    def flush(self) -> None:
        """Journal what was stored (here, not in the queued task: the entry must exist even when
        the task queue is down or the task fails), then queue the rest of the follow-up."""
        from .tasks import follow_up_due, journal_store, queue_after_ingest

        with self._flush_lock:
            study_pks, counts = self.study_pks, self.stored_counts
            self.study_pks, self.stored_counts = set(), {}
        sender = asdict(self.origin) if self.origin is not None else {}
        follow_up_due(study_pks)
        for study_pk in sorted(study_pks):
            try:
                journal_store(study_pk, counts.get(study_pk, 0), sender)
            except Exception:  # the database is gone: the log keeps what the journal could not
                log.exception("store not journaled study_pk=%s stored=%d channel=%s", study_pk,
                              counts.get(study_pk, 0), sender.get("channel", ""))
            queue_after_ingest(study_pk)


class Rejected(Exception):
    def __init__(self, outcome: Outcome, reason: str):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def ingest_file(
    path: Path | str,
    origin: Origin,
    *,
    adopt: bool = False,
    batch: PostIngestBatch | None = None,
    received: storage.IncomingFile | None = None,
    header: Dataset | None = None,
    header_json: dict | None = None,
) -> IngestResult:
    """Store and index one DICOM file.

    `adopt=True` hands over a file already inside the storage's temp folder (the SCP receives
    straight into it): it is moved, not copied. Otherwise the file is copied and left alone.
    `received` is the file at `path` as the SCP wrote it: it knows its SHA-256 and may have
    been synced already; used only if that file is stored as it is. `header` is the file's data
    set up to its pixel data as the SCP already parsed it (with its file meta), so that the
    file need not be read again; it is validated as a header read here would be. `header_json`
    is its DICOM JSON as `instance_header_json(header)` returns it, if the caller built it.
    """
    path = Path(path)
    location = storage.default_location()
    try:
        ds, is_part10 = (header, True) if header is not None else _read_header(path)
        uids = _validated_uids(ds, header_json if header is not None else None)
        _check_whole(path, ds, uids, is_part10, received if received is not None and received.name == str(path) else None)
    except Rejected as rejected:
        _discard(path, adopt)
        log.warning(
            "ingest rejected outcome=%s channel=%s ae=%s reason=%r",
            rejected.outcome.value, origin.channel, origin.ae_title, rejected.reason,
        )
        return IngestResult(rejected.outcome, rejected.reason)

    sop_uid = uids["SOPInstanceUID"]
    final = folder_synced = None
    try:
        temp = _temp_copy(path, ds, is_part10, location, adopt)
        as_received = received is not None and temp == path
        if as_received:
            content_sha256, size = received.checksum()
        else:
            content_sha256, size = storage.checksum(temp)
        relative_path = storage.relative_path_for(uids["StudyInstanceUID"], content_sha256)
        if header is None or header_json is None:
            header_json = instance_header_json(ds)
        fields = _instance_fields(ds, uids, origin, location, relative_path, content_sha256, size, header_json,
                                  received if as_received else None)
        # A received file is renamed first and then synced, data and name together (one journal
        # commit instead of two), before its row exists.
        final = storage.place_unsynced(temp, location, relative_path) if as_received else None
        if final is not None:
            folder_synced = _DONE
            storage.sync_placed(received, final)
        else:
            if as_received:
                received.sync()
            final = storage.place(temp, location, relative_path, synced=as_received, sync_folder=False)
            # The rename becomes durable while the row is written: both before the answer. (Should
            # power fail between the commit and the folder's sync, the row may name a missing file;
            # the sender, never told Success, sends again, and a duplicate whose file is missing is
            # stored again: see _insert_or_replace.)
            folder_synced = storage.sync_folder_soon(final.parent)
    except OSError as exc:
        if folder_synced is _DONE:  # renamed, then its sync failed: nothing may refer to it
            _remove_unreferenced(location, relative_path)
        _discard(path, adopt)
        log.error("ingest write failed sop=%s error=%r", sop_uid, exc)
        return IngestResult(Outcome.FAILED, f"could not write the file: {exc.strerror or exc}", sop_uid)

    try:
        result = _index_durably(ds, uids, origin, fields)
    except Exception as exc:  # the database failed: the file must not outlive its index row
        _wait_quietly(folder_synced)
        _remove_unreferenced(location, relative_path)
        log.exception("ingest index failed sop=%s", sop_uid)
        return IngestResult(Outcome.FAILED, f"could not index the instance: {exc}", sop_uid)
    try:
        folder_synced.result()
    except OSError as exc:  # indexed, but its name may not survive a power loss: not Success
        log.error("ingest folder sync failed sop=%s error=%r", sop_uid, exc)
        return IngestResult(Outcome.FAILED, f"could not make the file durable: {exc.strerror or exc}", sop_uid)

    own_batch = batch is None
    batch = batch or PostIngestBatch()
    batch.add(result, origin)
    if own_batch:
        batch.flush()
    log.info(
        "ingest %s sop=%s study_pk=%s bytes=%d ae=%s channel=%s",
        result.outcome.value, sop_uid, result.study_pk, size, origin.ae_title, origin.channel,
    )
    return result


# --- Reading and validating ------------------------------------------------------------------------


def _read_header(path: Path) -> tuple[Dataset, bool]:
    """The dataset without pixel data; whether the file is a Part-10 file (preamble + meta)."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        ds = None
    except Exception as exc:
        raise Rejected(Outcome.UNREADABLE, f"unreadable DICOM header: {exc}")
    if ds is not None:
        # Garbage after a valid file meta can parse as a few bogus elements without an error.
        if not any(keyword in ds for keyword in REQUIRED_UIDS):
            raise Rejected(Outcome.UNREADABLE, "no readable data set after the file meta")
        return ds, True
    try:  # a bare dataset without preamble and file meta (old media, some exports)
        ds = dcmread(path, stop_before_pixels=True, force=True)
        if len(ds) == 0 or "SOPClassUID" not in ds:
            raise ValueError("no DICOM data set found")
        return ds, False
    except Exception as exc:
        raise Rejected(Outcome.UNREADABLE, f"not a DICOM file: {exc}")


def _validated_uids(ds: Dataset, header_json: dict | None = None) -> dict[str, str]:
    """The REQUIRED_UIDS of the header, read from its DICOM JSON when the caller built it (the
    same values, without converting the elements again)."""
    uids = {}
    for keyword in REQUIRED_UIDS:
        try:
            if header_json is not None:
                value = _json_text(header_json.get(REQUIRED_UID_KEYS[keyword]))
            else:
                value = str(ds.get(keyword, "") or "").strip()
        except Exception as exc:
            raise Rejected(Outcome.UNREADABLE, f"unreadable {keyword}: {exc}")
        if not value:
            raise Rejected(Outcome.INVALID, f"missing {keyword}")
        if len(value) > 64 or not UID_PATTERN.match(value):
            raise Rejected(Outcome.INVALID, f"malformed {keyword}")
        uids[keyword] = value
    return uids


def _json_text(element: dict | None) -> str:
    """A DICOM JSON element's value as text; several values joined by backslashes (which no
    valid UID contains)."""
    values = (element or {}).get("Value") or []
    return "\\".join(str(value) for value in values).strip()


def _check_whole(path: Path, ds: Dataset, uids: dict[str, str], is_part10: bool,
                 received: storage.IncomingFile | None = None) -> None:
    """Refuse a file whose File Meta Information names another instance than its data set (for
    a C-STORE, the meta holds the command's UIDs), and a data set cut short. `received`: the
    file at `path` as it was written, which may have checked its data set already."""
    if is_part10:
        for meta_keyword, keyword in (("MediaStorageSOPClassUID", "SOPClassUID"),
                                      ("MediaStorageSOPInstanceUID", "SOPInstanceUID")):
            named = _file_meta_text(ds, meta_keyword, received)
            if named and named != uids[keyword]:
                raise Rejected(Outcome.INVALID, f"{keyword} differs from the file meta / C-STORE command")
    if received is not None and received.truncation is not None:
        raise Rejected(Outcome.UNREADABLE, f"truncated data set: {received.truncation}")
    if received is not None and received.checked_whole:
        return
    encoding = _encoding(ds, is_part10)
    if encoding is None:
        return
    try:
        check_file(path, is_part10, *encoding)
    except Truncated as truncated:
        raise Rejected(Outcome.UNREADABLE, f"truncated data set: {truncated}")
    except OSError as exc:
        raise Rejected(Outcome.UNREADABLE, f"unreadable file: {exc.strerror or exc}")


def _file_meta_text(ds: Dataset, keyword: str, received: storage.IncomingFile | None) -> str:
    """A File Meta Information value; a received file knows those it wrote (receiving.py), which
    spares converting its raw elements (pydicom validates each UID: ~0.1 ms per instance)."""
    known = getattr(received, "file_meta_values", None)
    if known is not None and keyword in known:
        return known[keyword]
    return str(ds.file_meta.get(keyword, "") or "").strip()


def _encoding(ds: Dataset, is_part10: bool) -> tuple[bool, bool] | None:
    """(implicit VR, little endian) of the data set; None when it cannot be walked (deflated,
    a private transfer syntax)."""
    if not is_part10:
        return ds.original_encoding
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")))
    if not syntax.is_transfer_syntax or syntax.is_deflated:
        return None
    return syntax.is_implicit_VR, syntax.is_little_endian


_DONE = concurrent.futures.Future()  # a sync already done inline
_DONE.set_result(None)


# --- Writing the file ---------------------------------------------------------------------------------


def _temp_copy(path: Path, ds: Dataset, is_part10: bool, location: StorageLocation, adopt: bool) -> Path:
    """A temp file in the storage's temp folder holding exactly what is to be stored."""
    if is_part10 and adopt:
        return path
    temp = storage.new_temp_path(location)
    if is_part10:
        shutil.copyfile(path, temp)
        return temp
    # A bare dataset: wrap it in a Part-10 file so that it can be sent and read back.
    full = dcmread(path, force=True)
    full.ensure_file_meta()
    full.file_meta.MediaStorageSOPClassUID = full.SOPClassUID
    full.file_meta.MediaStorageSOPInstanceUID = full.SOPInstanceUID
    full.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID  # we wrote this meta
    full.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if "TransferSyntaxUID" not in full.file_meta:
        full.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    full.save_as(temp, enforce_file_format=True)
    _discard(path, adopt)
    ds.file_meta = full.file_meta
    return temp


def _wait_quietly(future) -> None:
    try:
        future.result()
    except OSError:
        pass


def _discard(path: Path, adopt: bool) -> None:
    if adopt:
        path.unlink(missing_ok=True)


def _remove_unreferenced(location: StorageLocation, relative_path: str) -> None:
    """Delete a placed file unless an index row (e.g. an identical earlier copy) points at it."""
    if not Instance.objects.filter(storage_location=location, file_path=relative_path).exists():
        storage.remove(location, relative_path)


# --- Indexing -----------------------------------------------------------------------------------------


def _instance_fields(
    ds: Dataset,
    uids: dict[str, str],
    origin: Origin,
    location: StorageLocation,
    relative_path: str,
    content_sha256: str,
    size: int,
    header_json: dict,
    received: storage.IncomingFile | None = None,
) -> dict:
    return {
        "sop_class_uid": uids["SOPClassUID"],
        "instance_number": _json_integer(header_json, INSTANCE_NUMBER_KEY),
        "transfer_syntax_uid": _file_meta_text(ds, "TransferSyntaxUID", received) or "1.2.840.10008.1.2",
        "storage_location": location,
        "file_path": relative_path,
        "file_size": size,
        "sha256": content_sha256,
        "header": header_json,
        "source_ae": origin.ae_title[:16],
    }


def _index_durably(ds: Dataset, uids: dict[str, str], origin: Origin, fields: dict) -> IngestResult:
    """_index(), durable on return. On SQLite the WAL is synced after the write lock is released
    (wal_sync.py), so that the next association's transaction need not wait for that fsync."""
    if not wal_sync.applies():
        with index_writer():
            return _index(ds, uids, origin, fields)
    with index_writer():
        with wal_sync.unsynced_commit():
            result = _index(ds, uids, origin, fields)
        ticket = wal_sync.ticket()
    wal_sync.sync(ticket)
    return result


def _index(ds: Dataset, uids: dict[str, str], origin: Origin, fields: dict) -> IngestResult:
    attempt = 0
    while True:
        try:
            result, obsolete_file = _insert_or_replace(ds, uids, origin, fields)
            break
        except IntegrityError:
            if attempt:
                raise
            # A cached study or series may have been deleted since: look them up afresh, once.
            _parents.clear()
        except OperationalError as exc:
            # MariaDB and PostgreSQL roll back a deadlock's victim whole; two associations adding
            # series to one study can still meet that way. Retried here, where the transaction
            # began (inside a caller's transaction, the caller must retry).
            if not deadlocks.may_retry(exc, attempt):
                raise
            log.info("ingest index deadlock, retrying sop=%s attempt=%d error=%s", uids["SOPInstanceUID"], attempt + 1,
                     exc)
        attempt += 1
    if obsolete_file is not None:
        _remove_unreferenced(*obsolete_file)
    return result


def _insert_or_replace(
    ds: Dataset, uids: dict[str, str], origin: Origin, fields: dict
) -> tuple[IngestResult, tuple[StorageLocation, str] | None]:
    """One transaction: parents, then the instance row. Returns the result and a file that the
    transaction made obsolete (the new copy of an ignored duplicate, or a replaced copy)."""
    sop_uid = uids["SOPInstanceUID"]
    new_file = (fields["storage_location"], fields["file_path"])
    cached = _parents.cached(uids["SeriesInstanceUID"])
    if cached is not None:
        # The parents exist already: the row and the counts that include it (study_counts.py)
        # in one short transaction. A duplicate (or a stale cache entry) fails it and takes the
        # full path below; inside a caller's transaction it is a savepoint, which keeps that
        # transaction usable after the failure. The counters come first: their UPDATEs take the
        # parent rows' write locks (study, then series) before the INSERT's foreign-key check
        # takes a shared lock on the series (on MariaDB, two INSERTs holding that shared lock and
        # both then wanting the write lock deadlocked).
        study_pk, series_pk = cached
        values = {"sop_instance_uid": sop_uid, "series_id": series_pk, **fields}
        try:
            if connections[DEFAULT_DB_ALIAS].in_atomic_block:
                with transaction.atomic():  # a savepoint: the caller's transaction outlives a duplicate
                    study_counts.count_instance(study_pk, series_pk, 1, fields["file_size"])
                    instance_pk = insert_instance(values)
            else:  # its own transaction, through the driver's cursor (instance_insert.py)
                instance_pk = insert_counted(study_pk, series_pk, values)
            return IngestResult(Outcome.STORED, "", sop_uid, study_pk, instance_pk), None
        except IntegrityError:
            pass
    with transaction.atomic():
        study_pk, series_pk, new_series = _parents.resolve(ds, uids, origin, fields["storage_location"])
        if new_series:
            study_counts.series_added(study_pk, _text(ds, "Modality", 16))
        try:
            with transaction.atomic():  # a savepoint: a duplicate must not undo the parents
                study_counts.count_instance(study_pk, series_pk, 1, fields["file_size"])
                instance_pk = insert_instance({"sop_instance_uid": sop_uid, "series_id": series_pk, **fields})
            return IngestResult(Outcome.STORED, "", sop_uid, study_pk, instance_pk), None
        except IntegrityError:
            existing = Instance.objects.select_for_update().filter(sop_instance_uid=sop_uid).first()
            if existing is None:
                raise
        if settings.PACS_DUPLICATE_POLICY == "ignore" and not origin.replace_duplicates:
            if storage.stored_exists(existing):
                return IngestResult(Outcome.IGNORED, "SOP Instance UID already stored", sop_uid), new_file
            log.warning("stored file of sop=%s is missing: storing the copy received now", sop_uid)
        old_file = (existing.storage_location, existing.file_path)
        study_counts.count_instance(_study_of(existing.series_id), existing.series_id, -1, existing.file_size)
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.series_id = series_pk
        existing.save()
        study_counts.count_instance(study_pk, series_pk, 1, existing.file_size)
    result = IngestResult(Outcome.REPLACED, "", sop_uid, study_pk, existing.pk)
    return result, (old_file if old_file != new_file else None)


class _ParentCache:
    """Series UID -> (study pk, series pk) for the instances that follow the first of a series:
    saves three lookups per instance. Bounded; a stale entry fails the insert and is dropped."""

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._series: dict[str, tuple[int, int]] = {}

    def cached(self, series_uid: str) -> tuple[int, int] | None:
        return self._series.get(series_uid)

    def resolve(self, ds: Dataset, uids: dict[str, str], origin: Origin,
                location: StorageLocation) -> tuple[int, int, bool]:
        """(study pk, series pk, whether the series was created now)."""
        series_uid = uids["SeriesInstanceUID"]
        cached = self._series.get(series_uid)
        if cached is not None:
            return *cached, False
        study = _study(ds, uids["StudyInstanceUID"], origin, location)
        # The study's row locked before its series is looked up or created, as count_instance
        # locks it before the series': on MariaDB, two transactions each inserting a series of the
        # same study (a shared lock on the study's row) and then counting it deadlocked.
        Study.objects.select_for_update().filter(pk=study.pk).values_list("pk").first()
        series, created = _series(ds, series_uid, study)
        if len(self._series) >= self.MAX_ENTRIES:
            self._series.clear()
        # Cached only once committed: a rolled-back transaction must not leave pks behind.
        transaction.on_commit(lambda: self._series.__setitem__(series_uid, (study.pk, series.pk)))
        return study.pk, series.pk, created

    def clear(self) -> None:
        self._series.clear()


_parents = _ParentCache()


def forget_cached_parents() -> None:
    """Drop cached study/series keys (tests, deletions)."""
    _parents.clear()


def _patient(ds: Dataset) -> Patient:
    name = _text(ds, "PatientName", 324)
    patient, created = Patient.objects.get_or_create(
        patient_id=_text(ds, "PatientID", 64),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID", 64),
        defaults={
            "patient_name": name,
            "patient_name_search": name.upper(),
            "birth_date": _date(ds, "PatientBirthDate"),
            "sex": _text(ds, "PatientSex", 16),
        },
    )
    return patient


def _study(ds: Dataset, study_uid: str, origin: Origin, location: StorageLocation) -> Study:
    """The study, created with its patient on first sight. A later instance naming another
    patient stays with the study's patient: a study belongs to one patient."""
    study = Study.objects.filter(study_instance_uid=study_uid).select_related("patient").first()
    if study is not None:
        if study.patient.patient_id != _text(ds, "PatientID", 64):
            log.warning("patient id differs from the study's study_pk=%s", study.pk)
        return study
    study, created = Study.objects.get_or_create(
        study_instance_uid=study_uid,
        defaults={
            "patient": _patient(ds),
            "study_date": _date(ds, "StudyDate"),
            "study_time": _text(ds, "StudyTime", 16),
            "accession_number": _text(ds, "AccessionNumber", 64),
            "study_id": _text(ds, "StudyID", 16),
            "study_description": _text(ds, "StudyDescription", 128),
            "referring_physician_name": _text(ds, "ReferringPhysicianName", 324),
            "reading_physician_name": _text(ds, "NameOfPhysiciansReadingStudy", 324),
            "institution_name": _text(ds, "InstitutionName", 128),
            "source_ae": origin.ae_title[:16],
            "storage_location": location,
        },
    )
    return study


def _series(ds: Dataset, series_uid: str, study: Study) -> tuple[Series, bool]:
    series, created = Series.objects.get_or_create(
        series_instance_uid=series_uid,
        defaults={
            "study": study,
            "equipment": _equipment(ds),
            "modality": _text(ds, "Modality", 16),
            "series_number": _integer(ds, "SeriesNumber"),
            "series_description": _text(ds, "SeriesDescription", 128),
            "body_part_examined": _text(ds, "BodyPartExamined", 16),
            "series_date": _date(ds, "SeriesDate"),
            "series_time": _text(ds, "SeriesTime", 16),
        },
    )
    return series, created


def _study_of(series_pk: int) -> int:
    return Series.objects.filter(pk=series_pk).values_list("study_id", flat=True).get()


def _equipment(ds: Dataset) -> Equipment | None:
    fields = {
        "manufacturer": _text(ds, "Manufacturer", 64),
        "manufacturer_model_name": _text(ds, "ManufacturerModelName", 64),
        "station_name": _text(ds, "StationName", 16),
        "device_serial_number": _text(ds, "DeviceSerialNumber", 64),
        "institution_name": _text(ds, "InstitutionName", 128),
    }
    if not any(fields.values()):
        return None
    equipment, _ = Equipment.objects.get_or_create(**fields)
    return equipment


# --- Reading values leniently: a bad optional value must not reject the instance --------------------


INSTANCE_NUMBER_KEY = f"{tag_for_keyword('InstanceNumber'):08X}"


def _json_integer(header_json: dict, key: str) -> int | None:
    """A single IS value of the DICOM JSON (a number there), as _integer() reads it from the data set."""
    values = (header_json.get(key) or {}).get("Value") or []
    if len(values) != 1 or isinstance(values[0], bool):
        return None
    try:
        return int(values[0])
    except (TypeError, ValueError, OverflowError):
        return None


def _text(ds: Dataset, keyword: str, max_length: int) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:max_length]


def _integer(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except Exception:
        return None


def _date(ds: Dataset, keyword: str) -> datetime.date | None:
    text = _text(ds, keyword, 8)
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None

