"""The truncation check (pacsone/dataset_structure.py): an element running past the end of the
data set is found in every encoding; whole files, odd padding included, pass."""

import random
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from pacsone.dataset_structure import Truncated, _data_set_start, check_data, check_file, check_head
from tests.helpers import make_dataset, pydicom_file, write_dataset


def check(path: Path) -> None:
    syntax = UID(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    check_file(path, True, syntax.is_implicit_VR, syntax.is_little_endian)


def written(tmp_path: Path, ds: Dataset, syntax: str, cut: int = 0) -> Path:
    ds.file_meta.TransferSyntaxUID = syntax
    path = write_dataset(ds, tmp_path / "whole.dcm")
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    return path


def with_sequence(ds: Dataset) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "T-D1100", "SRT", "Head"
    ds.AnatomicRegionSequence = Sequence([item])
    ds.AnatomicRegionSequence.is_undefined_length = True
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_a_whole_file_passes_and_a_cut_one_is_found(tmp_path, syntax):
    check(written(tmp_path, with_sequence(make_dataset()), syntax))
    with pytest.raises(Truncated, match=r"\(7FE0,0010\) runs 100 bytes past the end"):
        check(written(tmp_path, with_sequence(make_dataset()), syntax, cut=100))


def test_a_file_cut_inside_an_undefined_length_sequence_is_found(tmp_path):
    ds = make_dataset()
    del ds.PixelData
    item = Dataset()
    item.RequestedProcedureDescription = "A long description " * 3
    ds.RequestAttributesSequence = Sequence([item])  # (0040,0275): the last element
    ds.RequestAttributesSequence.is_undefined_length = True
    with pytest.raises(Truncated):
        check(written(tmp_path, ds, ExplicitVRLittleEndian, cut=30))


def test_encapsulated_pixel_data_cut_short_is_found(tmp_path):
    ds = make_dataset()
    ds.PixelData = encapsulate([b"\x01" * 500, b"\x02" * 500])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    path = write_dataset(ds, tmp_path / "frames.dcm")
    check(path)
    path.write_bytes(path.read_bytes()[:-300])  # inside the second fragment
    with pytest.raises(Truncated, match=r"\(FFFE,E000\)"):
        check(path)


def test_an_odd_padding_byte_is_not_a_truncation(tmp_path):
    path = written(tmp_path, make_dataset(), ExplicitVRLittleEndian)
    path.write_bytes(path.read_bytes() + b"\0")
    check(path)


def test_a_file_cut_inside_an_element_header_is_found(tmp_path):
    ds = make_dataset()
    del ds.PixelData
    path = written(tmp_path, ds, ExplicitVRLittleEndian)
    path.write_bytes(path.read_bytes() + b"\xe0\x7f\x10\x00OW")
    with pytest.raises(Truncated, match="ends inside an element header"):
        check(path)


def test_every_whole_file_in_pydicoms_wheel_passes_and_its_truncated_ones_do_not():
    folder = Path(get_testdata_file("CT_small.dcm")).parent
    flagged = set()
    for path in sorted(folder.glob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                syntax = UID(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            except Exception:
                continue
        if not syntax.is_transfer_syntax or syntax.is_deflated:
            continue
        try:
            check_file(path, True, syntax.is_implicit_VR, syntax.is_little_endian)
        except Truncated:
            flagged.add(path.name)
    assert flagged == {"MR_truncated.dcm", "rtplan_truncated.dcm"}
    assert pydicom_file("MR_truncated.dcm")  # the corpus is the wheel's, never downloaded


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_a_file_cut_anywhere_or_garbled_gives_a_verdict_never_an_error(tmp_path, syntax):
    whole = written(tmp_path, with_sequence(make_dataset(rows=4)), syntax).read_bytes()
    encoding = UID(syntax).is_implicit_VR, UID(syntax).is_little_endian
    rng = random.Random(11)
    damaged = [whole[:end] for end in range(len(whole))]
    for _ in range(300):
        data = bytearray(whole)
        for _flip in range(rng.randint(1, 8)):
            data[rng.randrange(132, len(data))] = rng.randrange(256)
        damaged.append(bytes(data))
    for data in damaged:
        try:
            check_data(data, True, *encoding)
        except Truncated:
            pass


def verdict(data: bytes, implicit: bool, little: bool):
    """check_data()'s verdict on a data set without file meta: "whole" or the Truncated message."""
    try:
        check_data(data, False, implicit, little)
    except Truncated as truncated:
        return str(truncated)
    return "whole"


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_the_check_of_a_head_in_memory_agrees_with_the_whole_data_set_or_asks_for_more(tmp_path, syntax):
    """A received data set is checked from its first bytes kept in memory and its length: where
    those bytes suffice the verdict is the one on the whole data set, otherwise it says so."""
    raw = written(tmp_path, with_sequence(make_dataset(rows=16)), syntax).read_bytes()
    whole = raw[_data_set_start(raw):]
    encoding = UID(syntax).is_implicit_VR, UID(syntax).is_little_endian
    sufficed = 0
    for length in (len(whole), len(whole) - 100, len(whole) - 1, len(whole) - 300):
        data = whole[:length]
        for kept in range(length + 1):
            try:
                if not check_head(data[:kept], length, *encoding):
                    continue  # needs more than was kept: the ingest walks the file
                found = "whole"
            except Truncated as truncated:
                found = str(truncated)
            sufficed += 1
            assert found == verdict(data, *encoding), (length, kept)
    assert sufficed > 0
    pixel_data_value = 16 * 16 * 2
    assert check_head(whole[:len(whole) - pixel_data_value], len(whole), *encoding)  # all but the pixels
    with pytest.raises(Truncated, match=r"\(7FE0,0010\) runs 100 bytes past the end"):
        check_head(whole[:len(whole) - pixel_data_value], len(whole) - 100, *encoding)
