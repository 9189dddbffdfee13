"""WADO-RS frames read only what one frame needs from the stored file (bytes read through the
storage interface are counted): native pixels by their byte range, encapsulated ones through the
Basic Offset Table, the Extended Offset Table, or the fragment items' headers when neither is
there; the frames given are the stored ones, byte for byte, or their decoded pixels."""

import io

import numpy as np
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import RLELossless

from pacsone import storage
from pacsone.dicomweb import frames as frame_access
from tests.helpers import CountingReader, ingest_instance, make_dataset, pydicom_file, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES, SIZE = 40, 128
FRAME_BYTES = SIZE * SIZE * 2


def pixels(number: int) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    return ((x * 3 + y * 5 + number * 11) % 2000).astype(np.int16)


@pytest.fixture
def counted(monkeypatch):
    opened = storage.open_stored
    monkeypatch.setattr(storage, "open_stored", lambda instance: io.BufferedReader(CountingReader(opened(instance))))
    CountingReader.total = 0
    return CountingReader


def multiframe(tmp_path, name: str, table: str = "native"):
    """FRAMES frames of SIZE x SIZE, native or RLE with `table`: "bot", "eot" or "none"."""
    ds = make_dataset(rows=SIZE, patient_id="MF1")
    if table == "native":
        ds.PixelData = b"".join(pixels(n).tobytes() for n in range(FRAMES))
    else:
        encoded = []
        for number in range(FRAMES):
            one = make_dataset(rows=SIZE)
            one.compress(RLELossless, pixels(number), encoding_plugin="pydicom")
            encoded.append(next(generate_frames(one.PixelData, number_of_frames=1)))
        ds.file_meta.TransferSyntaxUID = RLELossless
        if table == "eot":
            ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(encoded)
        else:
            ds.PixelData = encapsulate(encoded, has_bot=table == "bot")
        ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = FRAMES
    return ingest_instance(write_dataset(ds, tmp_path / f"{name}.dcm"))


def test_a_native_frame_is_read_by_its_byte_range(tmp_path, counted):
    instance = multiframe(tmp_path, "native")
    assert instance.file_size > FRAMES * FRAME_BYTES
    for number in (1, 17, FRAMES):
        counted.total = 0
        [frame] = frame_access.frames(instance, [number], as_stored=False)
        assert frame.data == pixels(number - 1).tobytes()
        assert frame.media_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
        # The frame and the header (a buffered read or two more), never the file.
        assert counted.total < FRAME_BYTES + 64 * 1024, counted.total


@pytest.mark.parametrize("table", ["bot", "eot", "none"])
def test_an_encapsulated_frame_is_found_by_its_offsets_or_item_headers(tmp_path, counted, table):
    instance = multiframe(tmp_path, table, table)
    compressed_size = instance.file_size
    for number in (1, 23, FRAMES):
        counted.total = 0
        [stored] = frame_access.frames(instance, [number], as_stored=True)
        assert stored.media_type == f"image/x-dicom-rle; transfer-syntax={RLELossless}"
        assert counted.total < compressed_size / 4, (table, counted.total)
        counted.total = 0
        [native] = frame_access.frames(instance, [number], as_stored=False)
        assert np.array_equal(np.frombuffer(native.data, "<i2").reshape(SIZE, SIZE), pixels(number - 1))
        assert counted.total < compressed_size / 4
    with pytest.raises(frame_access.FrameError) as beyond:
        frame_access.frames(instance, [FRAMES + 1], as_stored=True)
    assert beyond.value.status == 404


def test_big_endian_and_single_frame_files_still_give_their_frames(tmp_path):
    from pydicom import dcmread

    for name in ("MR_small_bigendian.dcm", "CT_small.dcm", "SC_rgb_rle_2frame.dcm"):
        instance = ingest_instance(pydicom_file(name))
        original = dcmread(pydicom_file(name))
        expected = original.pixel_array if name != "SC_rgb_rle_2frame.dcm" else original.pixel_array[1]
        numbers = [2] if name == "SC_rgb_rle_2frame.dcm" else [1]
        [frame] = frame_access.frames(instance, numbers, as_stored=False)
        if name == "SC_rgb_rle_2frame.dcm":  # raw: RGB as stored, not converted
            assert np.array_equal(np.frombuffer(frame.data, np.uint8).reshape(expected.shape), expected)
        else:
            assert np.array_equal(np.frombuffer(frame.data, "<i2").reshape(expected.shape), expected)


def test_an_instance_without_pixel_data_has_no_frames(tmp_path):
    ds = make_dataset(patient_id="NOPIX")
    del ds.PixelData
    instance = ingest_instance(write_dataset(ds, tmp_path / "nopix.dcm"))
    with pytest.raises(frame_access.FrameError) as missing:
        frame_access.frames(instance, [1], as_stored=False)
    assert missing.value.status == 404
