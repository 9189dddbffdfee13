"""Rendering frames to PNG/JPEG: every transfer syntax pydicom/pylibjpeg decode, grayscale
pipeline (modality LUT, window, MONOCHROME1), colour, multi-frame, cache, clear errors."""

import io
from unittest import mock

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from pacsone import rendering, storage
from pacsone.models import Instance
from pacsone.rendering import RenderError, RenderRequest, Window, parse_request, render
from tests.helpers import ingest_instance as ingest, COMPRESSED_TEST_FILES, make_dataset, pydicom_file, write_dataset

pytestmark = pytest.mark.django_db

DECODABLE = [name for name in COMPRESSED_TEST_FILES if name != "JPEG-lossy.dcm"]


def ingest_dataset(tmp_path, ds, name="image.dcm") -> Instance:
    return ingest(write_dataset(ds, tmp_path / name))


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("name", DECODABLE)
def test_every_decodable_transfer_syntax_renders(name):
    instance = ingest(pydicom_file(name))
    assert instance.transfer_syntax_uid == COMPRESSED_TEST_FILES[name]
    image = decoded(render(instance, RenderRequest()))
    assert image.format == "PNG" and image.mode in ("L", "RGB")
    assert image.size == (instance.header["00280011"]["Value"][0], instance.header["00280010"]["Value"][0])
    assert len(np.unique(np.asarray(image))) > 2, "a real picture, not a flat field"


def test_an_undecodable_file_gives_a_clear_error_and_no_cache():
    instance = ingest(pydicom_file("JPEG-lossy.dcm"))
    with pytest.raises(RenderError, match="cannot be decoded"):
        render(instance, RenderRequest())
    assert not rendering.cache_folder(instance).exists()


def test_video_is_refused_with_a_reason():
    ds = make_dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    with pytest.raises(RenderError, match="H.264 video"):
        rendering.to_image(ds)


def test_an_instance_without_pixels_is_explained():
    ds = make_dataset()
    del ds.PixelData
    with pytest.raises(RenderError, match="no image"):
        rendering.to_image(ds)


def test_signed_pixels_go_through_rescale_and_window(tmp_path):
    pixels = np.array([[-1000, 0, 40, 1000], [40, 40, 40, 40]], dtype=np.int16)
    ds = make_dataset(rows=2, RescaleSlope=1, RescaleIntercept=-1024)
    ds.Columns = 4
    ds.PixelData = (pixels + 1024).astype(np.int16).tobytes()
    instance = ingest_dataset(tmp_path, ds)
    # A soft-tissue window of 400/40: -1000 HU black, 1000 HU white, 40 HU mid-grey.
    image = decoded(render(instance, RenderRequest(window=Window(40, 400))))
    values = np.asarray(image)
    assert values[0, 0] == 0 and values[0, 3] == 255
    assert 120 <= values[1, 0] <= 135


def test_the_headers_window_is_the_default(tmp_path):
    ds = make_dataset(rows=4, WindowCenter="100", WindowWidth="2")
    ds.PixelData = np.array([0, 99, 101, 1999] * 4, dtype=np.int16).tobytes()
    values = np.asarray(decoded(render(ingest_dataset(tmp_path, ds), RenderRequest())))
    assert values[0].tolist() == [0, 0, 255, 255]


def test_monochrome1_is_inverted(tmp_path):
    two = make_dataset(rows=8)
    one = make_dataset(rows=8, PhotometricInterpretation="MONOCHROME1")
    a = np.asarray(decoded(render(ingest_dataset(tmp_path, two, "a.dcm"), RenderRequest())), dtype=int)
    b = np.asarray(decoded(render(ingest_dataset(tmp_path, one, "b.dcm"), RenderRequest())), dtype=int)
    assert (a + b == 255).all()


def test_8_bit_unsigned_and_ybr_colour(tmp_path):
    gray = make_dataset(rows=4, BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    gray.PixelData = bytes(range(0, 160, 10))
    assert decoded(render(ingest_dataset(tmp_path, gray, "g.dcm"), RenderRequest())).mode == "L"

    ybr = make_dataset(rows=2, BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0,
                       SamplesPerPixel=3, PhotometricInterpretation="YBR_FULL", PlanarConfiguration=0)
    ybr.PixelData = bytes([76, 85, 255] * 4)  # pure red in YCbCr
    image = decoded(render(ingest_dataset(tmp_path, ybr, "y.dcm"), RenderRequest()))
    red, green, blue = image.getpixel((0, 0))
    assert image.mode == "RGB" and red > 240 and green < 20 and blue < 20


def test_palette_colour():
    image = decoded(render(ingest(pydicom_file("examples_palette.dcm")), RenderRequest()))
    assert image.mode == "RGB"


def test_enhanced_multi_frame_uses_each_frames_window_and_rescale(tmp_path):
    from pydicom.dataset import Dataset

    def group(**attributes):
        item = Dataset()
        for keyword, value in attributes.items():
            setattr(item, keyword, value)
        return item

    ds = make_dataset(rows=2, Columns=4, NumberOfFrames=2)
    ds.PixelData = np.array([[0, 1024, 1064, 2048]] * 4, dtype=np.int16).tobytes()  # HU -1024, 0, 40, 1024
    shared = group(PixelValueTransformationSequence=[group(RescaleSlope="1", RescaleIntercept="-1024")])
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [
        group(FrameVOILUTSequence=[group(WindowCenter="40", WindowWidth="2")]),  # 40 HU and up white
        group(FrameVOILUTSequence=[group(WindowCenter="-1000", WindowWidth="2")]),  # all but air white
    ]
    instance = ingest_dataset(tmp_path, ds)
    first = np.asarray(decoded(render(instance, RenderRequest(frame=0))))
    second = np.asarray(decoded(render(instance, RenderRequest(frame=1))))
    assert first[0].tolist() == [0, 0, 255, 255]
    assert second[0].tolist() == [0, 255, 255, 255]
    assert rendering.default_window(rendering.read_instance(instance), 1) == Window(-1000, 2)


def test_multi_frame_frames_and_out_of_range(tmp_path):
    instance = ingest(pydicom_file("SC_rgb_rle_2frame.dcm"))
    first = np.asarray(decoded(render(instance, RenderRequest(frame=0))))
    second = np.asarray(decoded(render(instance, RenderRequest(frame=1))))
    assert first.shape == second.shape and not np.array_equal(first, second)
    with pytest.raises(RenderError, match="has 2 frame"):
        render(instance, RenderRequest(frame=2))


def test_thumbnails_are_small_jpegs_and_cached(tmp_path):
    instance = ingest(pydicom_file("JPEG2000.dcm"))  # 256 wide, 1024 high
    request = parse_request({}, thumbnail=True)
    data = render(instance, request)
    image = decoded(data)
    assert image.format == "JPEG" and image.size == (rendering.THUMBNAIL_SIZE // 4, rendering.THUMBNAIL_SIZE)
    cached = rendering.cache_folder(instance) / request.cache_name()
    assert cached.exists() and str(cached).startswith(str(settings.DATA_DIR / "cache"))
    with mock.patch.object(rendering, "to_image", side_effect=AssertionError("not from the cache")):
        assert render(instance, request) == data
    rendering.forget(instance)
    assert not cached.exists()


def test_series_thumbnails_are_rendered_after_ingest(tmp_path):
    from pacsone.models import Series

    for number in (2, 1):
        ds = make_dataset(study_uid="1.2.3.4", series_uid="1.2.3.4.1", sop_uid=f"1.2.3.4.1.{number}", InstanceNumber=number)
        ingest_dataset(tmp_path, ds, f"{number}.dcm")  # tests run the queued work inline
    first = Series.objects.get(series_instance_uid="1.2.3.4.1").instances.get(instance_number=1)
    thumbnail = parse_request({}, thumbnail=True)
    assert (rendering.cache_folder(first) / thumbnail.cache_name()).exists()
    assert rendering.warm_study_thumbnails(first.series.study_id) == 0  # already there


def test_thumbnails_of_what_cannot_be_rendered_are_skipped():
    instance = ingest(pydicom_file("JPEG-lossy.dcm"))
    assert rendering.warm_study_thumbnails(instance.series.study_id) == 0
    assert not rendering.cache_folder(instance).exists()


def test_a_chosen_window_is_not_kept_on_disk():
    instance = ingest(pydicom_file("CT_small.dcm"))
    windowed = RenderRequest(window=Window(40, 400))
    render(instance, windowed)
    assert not (rendering.cache_folder(instance) / windowed.cache_name()).exists()


def test_a_missing_file_is_reported():
    instance = ingest(pydicom_file("CT_small.dcm"))
    storage.absolute_path(instance.storage_location, instance.file_path).unlink()
    with pytest.raises(RenderError, match="missing"):
        render(instance, RenderRequest())


@pytest.mark.parametrize("params,message", [
    ({"frame": "x"}, "whole numbers"), ({"frame": "-1"}, "0 or more"), ({"size": "4"}, "between"),
    ({"wc": "40", "ww": "0"}, "at least 1"), ({"wc": "nan", "ww": "5"}, "finite"), ({"format": "gif"}, "png or jpeg"),
])
def test_bad_render_parameters_are_refused(params, message):
    with pytest.raises(ValueError, match=message):
        parse_request(params)


def test_parse_request_reads_window_and_format():
    request = parse_request({"frame": "3", "wc": "40", "ww": "400", "format": "jpg", "size": "256"})
    assert request == RenderRequest(3, Window(40.0, 400.0), 256, "jpeg")
    assert request.cache_name() == "f3_c40_w400_s256.jpeg"



@pytest.mark.peers
@pytest.mark.parametrize("program,options,syntax", [
    ("dcmcjpeg", ["+el"], "1.2.840.10008.1.2.4.57"),  # JPEG lossless, process 14
    ("dcmcjpeg", ["+e1"], "1.2.840.10008.1.2.4.70"),  # JPEG lossless SV1
    ("dcmcjpeg", ["+ee"], "1.2.840.10008.1.2.4.51"),  # JPEG extended 12-bit, made by dcmtk
    ("dcmcjpls", ["+en"], "1.2.840.10008.1.2.4.81"),  # JPEG-LS near-lossless (unsigned only)
])
def test_files_compressed_by_dcmtk_render(tmp_path, program, options, syntax):
    import subprocess

    from pydicom import dcmread

    from tests.helpers import dcmtk_program

    signed = 0 if program == "dcmcjpls" else 1
    ds = make_dataset(rows=64, WindowCenter="1000", WindowWidth="2000", PixelRepresentation=signed)
    plain = write_dataset(ds, tmp_path / "plain.dcm")
    target = tmp_path / "compressed.dcm"
    done = subprocess.run([dcmtk_program(program), *options, str(plain), str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    image = decoded(render(ingest(target), RenderRequest()))
    assert image.size == (64, 64) and len(np.unique(np.asarray(image))) > 2
