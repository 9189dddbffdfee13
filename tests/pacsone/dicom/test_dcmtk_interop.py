"""Real DICOM clients (dcmtk's echoscu, storescu, dcmsend) against the live SCP.

dcmtk re-encodes a data set when it sends it (sequences and items get explicit lengths, a
deflated stream is deflated again), so "stored as sent" is checked against what dcmtk's own
storescp in bit-preserving mode (+B) writes for the same dcmsend run, and the compressed pixel
data against the source file.
"""

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsone import storage
from pacsone.models import Instance, Patient, Series, Study
from tests.helpers import (
    COMPRESSED_TEST_FILES,
    dataset_bytes,
    free_port,
    make_dataset,
    make_file,
    pydicom_file,
    dcmtk_program,
    stored_files,
    write_dataset,
)

pytestmark = pytest.mark.peers

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
# Files that dcmsend -dn sends in their own syntax only; the big-endian one is uncompressed,
# so dcmsend also offers explicit and implicit VR little endian for it (see its own test).
COMPRESSED_ONLY = sorted(name for name, syntax in COMPRESSED_TEST_FILES.items() if syntax != EXPLICIT_VR_BIG_ENDIAN)
DCMTK_TIMEOUT = 60
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}  # Debian's dcmtk leaves Nagle on otherwise


@pytest.fixture(autouse=True)
def _dcmtk_installed():
    """Skip (or fail under PACS_REQUIRE_PEERS=1) before any server is started for nothing."""
    for name in ("echoscu", "storescu", "dcmsend", "storescp", "dcmcjpeg"):
        dcmtk_program(name)


def dcmtk(program: str, *args: str | Path | int) -> subprocess.CompletedProcess:
    """Run a dcmtk tool, bounded in time; stdout and stderr together in `.stdout`."""
    executable = dcmtk_program(program)
    return subprocess.run(
        [executable, *map(str, args)],
        env=DCMTK_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=DCMTK_TIMEOUT,
    )


def echo(port: int) -> subprocess.CompletedProcess:
    return dcmtk("echoscu", "-v", "-aec", "PACSONE", "-aet", "ECHOSCU", "127.0.0.1", port)


def dcmsend(port: int, *paths: Path) -> subprocess.CompletedProcess:
    """dcmsend as the tests use it: never decompress, scan folders recursively."""
    return dcmtk("dcmsend", "-v", "-aec", "PACSONE", "-aet", "DCMSEND", "-dn", "+sd", "+r", "127.0.0.1", port, *paths)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the reference storescp exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def what_dcmtk_sends(tmp_path: Path, *paths: Path) -> dict[str, Path]:
    """Send `paths` with the same dcmsend command to dcmtk's storescp in bit-preserving mode:
    the files it writes hold exactly the data set bytes dcmsend put on the wire. SOP Instance
    UID -> received file."""
    executable = dcmtk_program("storescp")
    folder = tmp_path / "dcmtk-reference"
    folder.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [executable, "+B", "+xa", "-aet", "PACSONE", "-od", str(folder), str(port)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        result = dcmsend(port, *paths)
        assert result.returncode == 0, result.stdout
    finally:
        process.kill()
        process.wait(timeout=10)
    return {dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in folder.iterdir()}


def stored_file_of(instance: Instance) -> Path:
    return storage.absolute_path(instance.storage_location, instance.file_path)


def test_echoscu_gets_an_answer(scp):
    _ae_title, port = scp

    result = echo(port)

    assert result.returncode == 0, result.stdout
    assert "Received Echo Response (Success)" in result.stdout


def test_storescu_stores_every_file_of_a_folder(scp, tmp_path):
    _ae_title, port = scp
    folder = tmp_path / "in"
    sources = []
    for study in range(3):
        study_uid = generate_uid()
        for series in range(2):
            series_uid = generate_uid()
            for number in range(1, 4):
                sources.append(
                    make_file(
                        folder / f"study{study}" / f"series{series}",
                        f"{number}.dcm",
                        study_uid=study_uid,
                        series_uid=series_uid,
                        patient_id=f"PAT{study % 2}",
                        InstanceNumber=number,
                    )
                )

    result = dcmtk("storescu", "-aec", "PACSONE", "-aet", "STORESCU", "+sd", "+r", "127.0.0.1", port, folder)

    assert result.returncode == 0, result.stdout
    assert Instance.objects.count() == len(sources) == 18
    assert (Patient.objects.count(), Study.objects.count(), Series.objects.count()) == (2, 3, 6)
    for source in sources:
        instance = Instance.objects.get(sop_instance_uid=dcmread(source).SOPInstanceUID)
        assert instance.source_ae == "STORESCU"
        assert instance.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN
        stored = stored_file_of(instance)
        assert storage.checksum(stored) == (instance.sha256, instance.file_size)
        assert dataset_bytes(stored) == dataset_bytes(source)
    assert len(stored_files()) == len(sources)


@pytest.mark.parametrize("name", COMPRESSED_ONLY)
def test_dcmsend_stores_a_compressed_file_as_it_was_sent(scp, tmp_path, name):
    # One file per run: several of pydicom's MR_small_* files share one SOP Instance UID.
    _ae_title, port = scp
    source = tmp_path / "in" / "nested" / name
    source.parent.mkdir(parents=True)
    source.write_bytes(pydicom_file(name).read_bytes())
    sop_uid = dcmread(source, stop_before_pixels=True).SOPInstanceUID

    result = dcmsend(port, tmp_path / "in")

    assert result.returncode == 0, result.stdout
    instance = Instance.objects.get()
    assert instance.sop_instance_uid == sop_uid
    assert instance.transfer_syntax_uid == COMPRESSED_TEST_FILES[name]
    stored = stored_file_of(instance)
    assert storage.checksum(stored) == (instance.sha256, instance.file_size)
    reference = what_dcmtk_sends(tmp_path, tmp_path / "in")[sop_uid]
    assert dataset_bytes(stored) == dataset_bytes(reference)
    # The compressed pixel data itself (fragments, offset table) is the source's, untouched.
    assert dcmread(stored).PixelData == dcmread(source).PixelData


def uncompressed_file(tmp_path: Path, kind: str) -> Path:
    if kind == "big-endian":
        return pydicom_file("MR_small_bigendian.dcm")
    ds = make_dataset()
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "PRIVATE TEXT")
    block.add_new(0x02, "DS", "1.5")
    return write_dataset(ds, tmp_path / "private.dcm")


@pytest.mark.parametrize("kind", ["big-endian", "explicit-vr-with-private-elements"])
def test_dcmsend_stores_an_uncompressed_file_in_explicit_vr(scp, tmp_path, kind):
    # For an uncompressed file dcmsend offers one context [explicit VR LE, explicit VR BE,
    # implicit VR LE], explicit VR little endian first (dcmtk's storescp takes that one).
    # Implicit VR would turn every private or unknown element into UN: an archive must not
    # choose it when the sender offers explicit VR.
    _ae_title, port = scp
    source = uncompressed_file(tmp_path, kind)

    result = dcmsend(port, source)

    assert result.returncode == 0, result.stdout
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid in (EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN)
    stored = dcmread(stored_file_of(instance))
    original = dcmread(source)
    assert [(e.tag, e.VR, e.value) for e in stored if e.tag != 0x7FE00010] == [
        (e.tag, e.VR, e.value) for e in original if e.tag != 0x7FE00010
    ]
    assert (stored.pixel_array == original.pixel_array).all()


@pytest.fixture
def jpeg_lossless_p14_file(tmp_path) -> Path:
    """A JPEG lossless process 14 file made by dcmtk itself (pydicom ships none)."""
    plain = make_file(tmp_path / "plain", "plain.dcm", rows=64)
    target = tmp_path / "p14" / "p14.dcm"
    target.parent.mkdir()
    result = dcmtk("dcmcjpeg", "+el", plain, target)
    assert result.returncode == 0, result.stdout
    assert dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID == JPEG_LOSSLESS_P14
    return target


def test_dcmsend_stores_a_jpeg_lossless_process_14_file_byte_for_byte(scp, tmp_path, jpeg_lossless_p14_file):
    _ae_title, port = scp

    result = dcmsend(port, jpeg_lossless_p14_file.parent)

    assert result.returncode == 0, result.stdout
    instance = Instance.objects.get()
    assert instance.sop_instance_uid == dcmread(jpeg_lossless_p14_file).SOPInstanceUID
    assert instance.transfer_syntax_uid == JPEG_LOSSLESS_P14
    stored = stored_file_of(instance)
    assert storage.checksum(stored) == (instance.sha256, instance.file_size)
    # dcmtk wrote this file itself, with explicit lengths: what it sends is the file's data set.
    assert dataset_bytes(stored) == dataset_bytes(jpeg_lossless_p14_file)


def test_storescu_gets_a_failure_status_for_a_dataset_missing_a_uid_and_stores_the_rest(scp, tmp_path):
    _ae_title, port = scp
    first = make_file(tmp_path, "1-good.dcm")
    bad_ds = make_dataset()
    del bad_ds.StudyInstanceUID  # storescu itself needs only the SOP Class and Instance UIDs
    bad = write_dataset(bad_ds, tmp_path / "2-no-study-uid.dcm")
    last = make_file(tmp_path, "3-good.dcm")

    # -nh: go on after a failed store, as a modality sending a whole study would.
    result = dcmtk("storescu", "-d", "-nh", "-aec", "PACSONE", "127.0.0.1", port, first, bad, last)

    statuses = re.findall(r"DIMSE Status\s*:\s*(0x[0-9a-f]{4})", result.stdout)
    assert statuses == ["0x0000", "0xa900", "0x0000"], result.stdout[-3000:]
    assert re.search(r"\(0000,0902\) LO \[missing StudyInstanceUID\]\s+#.*ErrorComment", result.stdout)
    stored_uids = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert stored_uids == {dcmread(first).SOPInstanceUID, dcmread(last).SOPInstanceUID}
    assert len(stored_files()) == 2
    assert echo(port).returncode == 0


def test_storescu_exits_with_a_failure_when_a_store_is_refused(scp, tmp_path):
    _ae_title, port = scp
    good = make_file(tmp_path, "1-good.dcm")
    bad_ds = make_dataset(study_uid="1.2.3/../4")  # a UID that could walk a file path
    bad = write_dataset(bad_ds, tmp_path / "2-malformed-uid.dcm")

    result = dcmtk("storescu", "-v", "-aec", "PACSONE", "127.0.0.1", port, good, bad)

    assert result.returncode != 0, result.stdout
    assert "Received Store Response (Error: DataSetDoesNotMatchSOPClass)" in result.stdout
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [dcmread(good).SOPInstanceUID]
    assert echo(port).returncode == 0


def test_storescu_reports_a_file_with_a_garbled_dataset_and_stores_the_rest(scp, tmp_path):
    _ae_title, port = scp
    first = make_file(tmp_path, "1-good.dcm")
    damaged_source = make_file(tmp_path / "src", "damaged.dcm")
    raw = damaged_source.read_bytes()
    meta_end = len(raw) - len(dataset_bytes(damaged_source))
    damaged = tmp_path / "2-damaged.dcm"
    # A valid preamble and file meta, then a data set whose first element claims 65535 bytes.
    damaged.write_bytes(raw[:meta_end] + b"\x08\x00\x16\x00UI\xff\xff" + bytes(range(256)) * 4)
    last = make_file(tmp_path, "3-good.dcm")

    result = dcmtk("storescu", "-v", "-nh", "-aec", "PACSONE", "127.0.0.1", port, first, damaged, last)
    halting = dcmtk("storescu", "-v", "-aec", "PACSONE", "127.0.0.1", port, damaged)

    # dcmtk cannot parse it either, so it reports the file and never sends it.
    assert "Bad DICOM file" in result.stdout and "2-damaged.dcm" in result.stdout, result.stdout
    assert result.stdout.count("Received Store Response (Success)") == 2, result.stdout
    assert halting.returncode != 0 and "Bad DICOM file" in halting.stdout, halting.stdout
    stored_uids = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert stored_uids == {dcmread(first).SOPInstanceUID, dcmread(last).SOPInstanceUID}
    assert dcmread(damaged_source).SOPInstanceUID not in stored_uids
    assert len(stored_files()) == 2
    assert echo(port).returncode == 0


def test_echoscu_to_a_called_ae_title_not_ours_is_rejected(scp):
    _ae_title, port = scp

    result = dcmtk("echoscu", "-v", "-aec", "WRONG", "-aet", "ECHOSCU", "127.0.0.1", port)

    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout, result.stdout
    assert echo(port).returncode == 0  # and the server goes on


# storescu proposes a SOP class missing from dcmtk's own list only from a configuration profile.
PRIVATE_PROFILE = """[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[PrivateContexts]
PresentationContext1 = {sop_class}\\Uncompressed

[[Profiles]]
[Private]
PresentationContexts = PrivateContexts
"""


@pytest.mark.parametrize("client", ["storescu", "dcmsend"])
def test_a_private_sop_class_is_stored_as_sent(scp, tmp_path, client):
    _ae_title, port = scp
    private_class = "1.3.12.2.1107.5.9.1"  # Siemens CSA Non-Image Storage
    ds = make_dataset(SOPClassUID=private_class)
    ds.file_meta.MediaStorageSOPClassUID = private_class
    source = write_dataset(ds, tmp_path / "private.dcm")
    if client == "storescu":
        profile = tmp_path / "private.cfg"
        profile.write_text(PRIVATE_PROFILE.format(sop_class=private_class))
        options = ["-xf", profile, "Private"]
    else:
        options = ["-nuc"]  # dcmsend: no check of the SOP class against dcmtk's list

    result = dcmtk(client, "-v", *options, "-aec", "PACSONE", "-aet", "SENDER", "127.0.0.1", port, source)

    assert result.returncode == 0, result.stdout
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert instance.sop_class_uid == private_class and instance.source_ae == "SENDER"
    assert dataset_bytes(stored_file_of(instance)) == dataset_bytes(source)
