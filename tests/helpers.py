"""Test helpers: DICOM files (made here or shipped in pydicom's wheel), free ports, peer
programs, and the environment for server processes started by tests."""

import functools
import io
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# Compressed and unusual files in pydicom's wheel (never downloaded): name -> transfer syntax.
# (Its JPEG-LS near-lossless file lacks the Study/Series UIDs, so it is rejected as it should be;
# the dcmtk tests make JPEG lossless .57 and JPEG-LS near-lossless files with dcmcjpeg/dcmcjpls.)
COMPRESSED_TEST_FILES = {
    "SC_rgb_jpeg_dcmtk.dcm": "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "JPEG-lossy.dcm": "1.2.840.10008.1.2.4.51",  # JPEG extended 12-bit
    "SC_rgb_jpeg_gdcm.dcm": "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "MR_small_jpeg_ls_lossless.dcm": "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "MR_small_jp2klossless.dcm": "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "JPEG2000.dcm": "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "MR_small_RLE.dcm": "1.2.840.10008.1.2.5",  # RLE lossless
    "image_dfl.dcm": "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "MR_small_bigendian.dcm": "1.2.840.10008.1.2.2",  # explicit VR big endian
}


def pydicom_file(name: str) -> Path:
    """A file from pydicom's wheel; never fetched from the network."""
    path = get_testdata_file(name, download=False)
    assert path, f"{name} is not in pydicom's wheel"
    return Path(path)


@functools.cache
def _is_dcmtk(executable: str) -> bool:
    try:
        version = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "$dcmtk:" in version.stdout + version.stderr


def dcmtk_program(name: str) -> str:
    """dcmtk's `name` (pynetdicom installs its own echoscu, storescu, ... into the virtualenv,
    which would shadow dcmtk's). Skips without dcmtk, unless PACS_REQUIRE_PEERS=1 (CI) says fail."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which(name, path=folder)
        if candidate and _is_dcmtk(candidate):
            return candidate
    reason = f"dcmtk's {name} is not installed (Debian package dcmtk); CI installs it"
    if os.environ.get("PACS_REQUIRE_PEERS") == "1":
        pytest.fail(f"PACS_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


def orthanc_program() -> str:
    """Debian's Orthanc server. Skips without it, unless PACS_REQUIRE_PEERS=1 (CI) says fail."""
    program = shutil.which("Orthanc", path="/usr/sbin:/usr/bin")
    if program:
        return program
    reason = "Orthanc is not installed (Debian package orthanc); CI installs it"
    if os.environ.get("PACS_REQUIRE_PEERS") == "1":
        pytest.fail(f"PACS_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


def echo_status(port: int, ae_title: str = "PACSONE", timeout: float = 10) -> int | None:
    """The status of a C-ECHO to a local SCP, or None when no association could be made."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="PACSTEST")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    if not assoc.is_established:
        return None
    try:
        rsp = assoc.send_c_echo()
        return rsp.Status if "Status" in rsp else None
    finally:
        assoc.release()


def rejection(port: int, calling_ae: str, sop_class: str = "1.2.840.10008.1.1", called_ae: str = "PACSONE",
              timeout: float = 10) -> tuple[int, int, int] | None:
    """The (result, source, reason) of an A-ASSOCIATE-RJ from a local SCP, or None when it accepted.

    Not pynetdicom's requestor: when a rejection comes back faster than its negotiating thread
    looks, that thread finds the socket already closed and reports an abort (seen on loaded CI)."""
    from pynetdicom.presentation import build_context

    from pacsone.dicom.net.requestor import AssociationRejected, StoreAssociation

    association = StoreAssociation("127.0.0.1", port, calling_ae, called_ae, [build_context(sop_class)], 65536,
                                   timeout=timeout)
    try:
        association.open()
    except AssociationRejected as rejected:
        return rejected.diagnosis
    association.release()
    return None


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379  # the Redis server of this machine and of CI


def redis_available() -> bool:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
        return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_dataset(
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str = "PAT001",
    patient_name: str = "DOE^JOHN",
    rows: int = 32,
    **attributes,
) -> Dataset:
    """A small, valid CT image with 16-bit pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyDate = "20240105"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = (np.arange(rows * rows, dtype=np.int16) % 2000).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write_dataset(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_file(folder: Path, name: str = "image.dcm", **kwargs) -> Path:
    return write_dataset(make_dataset(**kwargs), folder / name)


def dataset_bytes(path: Path) -> bytes:
    """The bytes after the file meta information: what a byte-faithful archive must keep."""
    from pydicom.filereader import read_preamble, _read_file_meta_info

    with open(path, "rb") as f:
        read_preamble(f, False)
        _read_file_meta_info(f)
        return f.read()


def stored_files() -> list[Path]:
    root = Path(settings.STORAGE_DIR)
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def temp_leftovers() -> list[Path]:
    folder = Path(settings.STORAGE_DIR) / "tmp"
    return [p for p in folder.iterdir()] if folder.exists() else []


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a server process started by a test: the test database and data folder."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        scheme, default_port = ("postgres", 5432) if connection.vendor == "postgresql" else ("mysql", 3306)
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"{scheme}://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or default_port}/{db['NAME']}"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        PACS_DATA_DIR=str(settings.DATA_DIR),
        DJANGO_SETTINGS_MODULE="pacsone.settings",
        PACS_TASKS_SYNC="true",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def ingest_instance(path: Path):
    """Import one file through the one ingest path; its Instance row."""
    from pacsone.ingest import Origin, ingest_file
    from pacsone.models import Instance

    result = ingest_file(path, Origin("import"))
    assert result.outcome.accepted, result.reason
    return Instance.objects.get(pk=result.instance_pk)


def journaled(timeout: float = 5, **filters):
    """The journal entries matching `filters`, waiting for the first: the SCP writes an
    operation's entry once the peer has its answer, which may be just after the peer's release."""
    from audit.models import Entry

    entries = Entry.objects.filter(**filters)
    deadline = time.monotonic() + timeout
    while not entries.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return entries


class CountingReader(io.RawIOBase):
    """A stored file whose reads are counted: `storage.open_stored` replaced by
    `lambda instance: io.BufferedReader(CountingReader(opened(instance)))` (tests, benchmarks)."""

    total = 0

    def __init__(self, opened):
        self._opened = opened  # its raw file closes with it
        self._raw = opened.raw

    @property
    def name(self):
        return self._raw.name

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        count = self._raw.readinto(buffer)
        CountingReader.total += count or 0
        return count

    def seek(self, offset, whence=0):
        return self._raw.seek(offset, whence)

    def tell(self):
        return self._raw.tell()

    def fileno(self):
        return self._raw.fileno()

    def close(self):
        self._opened.close()
        super().close()
