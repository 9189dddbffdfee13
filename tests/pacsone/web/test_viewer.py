"""The viewer's server side: viewer page data, rendered frames and thumbnails, header dump;
visibility (404 for guessed or mismatched UIDs), bad parameters, undecodable images."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from audit.models import Entry
from pacsone.models import Study
from tests.helpers import ingest_instance as ingest, make_dataset, pydicom_file, write_dataset
from tests.people import make_user

pytestmark = pytest.mark.django_db

STUDY, SERIES = "1.2.826.7.1", "1.2.826.7.1.1"
HIDDEN_STUDY = "1.2.826.7.2"


@pytest.fixture
def archive(tmp_path):
    """Jane's private CT series of three images, and a study she may not see."""
    for number in (3, 1, 2):
        ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.{number}", InstanceNumber=number,
                          ReferringPhysicianName="SMITH^JANE", WindowCenter="40", WindowWidth="400",
                          SliceLocation=str(number * 5))
        ingest(write_dataset(ds, tmp_path / f"{number}.dcm"))
    ingest(write_dataset(make_dataset(study_uid=HIDDEN_STUDY, sop_uid=f"{HIDDEN_STUDY}.1.1", patient_id="P2",
                                      ReferringPhysicianName="JONES^BOB"), tmp_path / "hidden.dcm"))
    return {"jane": make_user("jane", first_name="Jane", last_name="Smith")}


def login(client, archive):
    client.force_login(archive["jane"])


def viewer_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="viewer-data" type="application/json">') + len('<script id="viewer-data" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


def test_the_viewer_page_holds_the_ordered_stack_presets_and_overlay(client, archive):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/series/{SERIES}/viewer")
    assert response.status_code == 200
    data = viewer_data(response)
    assert [item["number"] for item in data["stack"]] == [1, 2, 3]
    assert data["stack"][0]["url"] == f"/studies/{STUDY}/instances/{SERIES}.1/frame"
    assert data["stack"][0]["frames"] == 1 and data["stack"][2]["location"] == 15
    assert data["presets"][0] == {"label": "Header 1", "wc": 40.0, "ww": 400.0}
    assert any(p["label"] == "Lung" for p in data["presets"])  # CT presets follow
    assert data["default_window"] == {"wc": 40.0, "ww": 400.0}
    assert data["overlay"]["PatientName"] == "DOE, John" and data["overlay"]["StudyDate"] == "2024-01-05" and data["overlay"]["Modality"] == "CT"
    assert b"viewer.js" in response.content
    assert Entry.objects.filter(action="view", study_uid=STUDY, target__startswith="viewer").exists()


def test_a_multi_frame_image_counts_its_frames(client, archive):
    instance = ingest(pydicom_file("SC_rgb_rle_2frame.dcm"))
    Study.objects.filter(pk=instance.series.study_id).update(public=True)
    login(client, archive)
    response = client.get(f"/studies/{instance.series.study.study_instance_uid}/series/{instance.series.series_instance_uid}/viewer")
    data = viewer_data(response)
    assert data["stack"][0]["frames"] == 2 and data["default_window"] is None  # colour: nothing to window
    assert data["fps"] is None  # the file records no cine rate
    frame = client.get(data["stack"][0]["url"] + "?frame=1")
    assert frame.status_code == 200 and frame["Content-Type"] == "image/png"


def test_a_header_window_that_is_not_a_number_is_left_out(client, archive):
    from pacsone.models import Instance

    instance = Instance.objects.get(sop_instance_uid=f"{SERIES}.1")
    instance.header["00281051"] = {"vr": "DS", "Value": [None]}
    instance.save(update_fields=["header"])
    login(client, archive)
    data = viewer_data(client.get(f"/studies/{STUDY}/series/{SERIES}/viewer"))
    assert data["presets"][0]["label"] == "Soft tissue"  # only the CT presets
    assert data["default_window"] == {"wc": 40.0, "ww": 400.0}  # from the file, as rendered


def test_cine_runs_at_the_recorded_rate(client, archive, tmp_path):
    ds = make_dataset(study_uid=STUDY, series_uid=SERIES + ".8", ReferringPhysicianName="SMITH^JANE", FrameTime="40")
    ingest(write_dataset(ds, tmp_path / "cine.dcm"))
    login(client, archive)
    assert viewer_data(client.get(f"/studies/{STUDY}/series/{SERIES}.8/viewer"))["fps"] == 25


def test_without_a_header_window_the_viewer_starts_from_the_images_range(client, archive, tmp_path):
    ds = make_dataset(study_uid=STUDY, series_uid=SERIES + ".9", ReferringPhysicianName="SMITH^JANE")
    ingest(write_dataset(ds, tmp_path / "nowindow.dcm"))
    login(client, archive)
    data = viewer_data(client.get(f"/studies/{STUDY}/series/{SERIES}.9/viewer"))
    assert data["default_window"] == {"wc": 512.0, "ww": 1024.0}  # pixels 0..1023 of the 32x32 image


def test_frames_and_thumbnails(client, archive):
    login(client, archive)
    frame = client.get(f"/studies/{STUDY}/instances/{SERIES}.1/frame", {"wc": "40", "ww": "400"})
    assert frame.status_code == 200 and frame["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(frame.content)).size == (32, 32)
    assert "private" in frame["Cache-Control"]
    thumbnail = client.get(f"/studies/{STUDY}/instances/{SERIES}.1/thumbnail")
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("path", [
    f"/studies/{HIDDEN_STUDY}/instances/{HIDDEN_STUDY}.1.1/frame",  # not Jane's study
    f"/studies/{STUDY}/instances/{HIDDEN_STUDY}.1.1/frame",  # her study's UID, another study's image
    f"/studies/{STUDY}/instances/9.9.9/thumbnail",  # no such image
    f"/studies/{HIDDEN_STUDY}/instances/{HIDDEN_STUDY}.1.1/thumbnail",
    f"/studies/{HIDDEN_STUDY}/instances/{HIDDEN_STUDY}.1.1/header",
    f"/studies/{HIDDEN_STUDY}/series/{SERIES}/viewer",
    f"/studies/{STUDY}/series/9.9.9/viewer",
])
def test_what_jane_may_not_see_is_404(client, archive, path):
    login(client, archive)
    assert client.get(path).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, archive):
    for path in (f"/studies/{STUDY}/instances/{SERIES}.1/frame", f"/studies/{STUDY}/series/{SERIES}/viewer"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("params,message", [
    ({"frame": "two"}, b"whole numbers"), ({"ww": "0", "wc": "1"}, b"at least 1"), ({"format": "bmp"}, b"png or jpeg"),
])
def test_bad_frame_parameters_are_400_with_a_reason(client, archive, params, message):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.1/frame", params)
    assert response.status_code == 400 and message in response.content


def test_a_frame_that_does_not_exist_or_cannot_be_decoded_is_422_with_a_reason(client, archive):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.1/frame", {"frame": "5"})
    assert response.status_code == 422 and b"has 1 frame" in response.content
    lossy = ingest(pydicom_file("JPEG-lossy.dcm"))
    Study.objects.filter(pk=lossy.series.study_id).update(public=True)
    response = client.get(f"/studies/{lossy.series.study.study_instance_uid}/instances/{lossy.sop_instance_uid}/frame")
    assert response.status_code == 422 and b"cannot be decoded" in response.content
    assert "cannot be decoded" in response["X-Render-Error"]


def test_the_header_dump_lists_every_attribute(client, archive):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.2/header")
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("(0010,0010)", "Patient&#x27;s Name", "DOE^JOHN", "Transfer Syntax UID", "Window Center"):
        assert text in page
    assert Entry.objects.filter(action="view", target=f"header of {SERIES}.2").exists()


def test_the_header_dump_nests_sequences(client, archive, tmp_path):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodeMeaning = "T-D1100", "Head"
    ds = make_dataset(study_uid=STUDY, series_uid=SERIES, ReferringPhysicianName="SMITH^JANE", AnatomicRegionSequence=[item])
    instance = ingest(write_dataset(ds, tmp_path / "seq.dcm"))
    login(client, archive)
    page = client.get(f"/studies/{STUDY}/instances/{instance.sop_instance_uid}/header").content.decode()
    assert "Anatomic Region Sequence" in page and "Item 1" in page and "T-D1100" in page


def test_a_huge_header_is_cut_with_a_note(client, archive, monkeypatch):
    monkeypatch.setattr("pacsone.web.images.MAX_HEADER_ROWS", 10)
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.2/header")
    assert len(response.context["rows"]) == 10 and b"Only the first 10 rows are shown." in response.content


def test_the_series_page_shows_instance_thumbnails(client, archive):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/series/{SERIES}/")
    assert response.status_code == 200
    assert response.content.count(b"/thumbnail") == 3
    assert f"viewer#{SERIES}.2".encode() in response.content


def test_the_study_page_shows_series_thumbnails(client, archive):
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/")
    assert f"/studies/{STUDY}/instances/{SERIES}.1/thumbnail".encode() in response.content  # the first image
    assert b"Open viewer" in response.content


def test_pixels_are_the_frames_real_values_for_the_browser_to_window(client, archive, tmp_path):
    import numpy as np

    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.1/pixels?frame=0")
    assert response.status_code == 200 and response["X-Pixel-Type"] == "int16"
    rows, columns = int(response["X-Rows"]), int(response["X-Columns"])
    values = np.frombuffer(response.content, "<i2").reshape(rows, columns)
    from pacsone import rendering
    from pacsone.models import Instance

    expected, _ = rendering.modality_frame(rendering.read_instance(Instance.objects.get(sop_instance_uid=f"{SERIES}.1")))
    assert np.array_equal(values, expected.astype(np.int16))
    assert client.get(f"/studies/{STUDY}/instances/{SERIES}.1/pixels?frame=x").status_code == 400
    assert client.get(f"/studies/{HIDDEN_STUDY}/instances/{HIDDEN_STUDY}.1.1/pixels").status_code == 404


def test_a_fractional_rescale_is_sent_as_float32(client, archive, tmp_path):
    ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.9", InstanceNumber=9,
                      ReferringPhysicianName="SMITH^JANE", RescaleSlope="0.5", RescaleIntercept="0")
    ingest(write_dataset(ds, tmp_path / "9.dcm"))
    login(client, archive)
    response = client.get(f"/studies/{STUDY}/instances/{SERIES}.9/pixels")
    assert response.status_code == 200 and response["X-Pixel-Type"] in ("float32", "int16")
    assert len(response.content) == int(response["X-Rows"]) * int(response["X-Columns"]) * (
        4 if response["X-Pixel-Type"] == "float32" else 2)


def test_a_colour_image_is_left_to_the_server_rendered_frames(client, archive):
    instance = ingest(pydicom_file("SC_rgb_rle.dcm"))
    client.force_login(make_user("root"))
    study = instance.series.study
    sop = instance.sop_instance_uid
    assert client.get(f"/studies/{study.study_instance_uid}/instances/{sop}/pixels").status_code == 415


def test_the_study_opens_on_the_series_with_the_most_images_and_presets_are_listed_once(client, archive, tmp_path):
    ds = make_dataset(study_uid=STUDY, series_uid=SERIES + "0", sop_uid=f"{SERIES}0.1", InstanceNumber=1,
                      SeriesNumber=0, ReferringPhysicianName="SMITH^JANE", WindowCenter="40", WindowWidth="400")
    ingest(write_dataset(ds, tmp_path / "scout.dcm"))
    login(client, archive)
    page = client.get(f"/studies/{STUDY}/").content.decode()
    assert f"/studies/{STUDY}/series/{SERIES}/viewer\">Open viewer" in page
    data = client.get(f"/studies/{STUDY}/series/{SERIES}/viewer.json").json()
    windows = [(p["wc"], p["ww"]) for p in data["presets"]]
    assert len(windows) == len(set(windows)) and (40.0, 400.0) in windows
    assert data["url"] == f"/studies/{STUDY}/series/{SERIES}/viewer" and len(data["stack"]) == 3


def test_series_pixels_sends_several_frames_in_one_answer_and_refuses_bad_asks(client, tmp_path):
    for number in range(3):
        ingest(write_dataset(make_dataset(study_uid="1.2.826.17.9", series_uid="1.2.826.17.9.1",
                                          sop_uid=f"1.2.826.17.9.1.{number}", patient_id="BATCH1"),
                             tmp_path / f"{number}.dcm"))
    study = Study.objects.get()
    url = f"/studies/{study.study_instance_uid}/series/1.2.826.17.9.1/pixels"
    client.force_login(make_user("outsider"))  # may not see the private study: 404 as for none
    assert client.get(url, {"f": "1.2.826.17.9.1.0:0"}).status_code == 404
    client.force_login(make_user("rad", ["view"]))
    response = client.get(url, {"f": ["1.2.826.17.9.1.2:0", "1.2.826.17.9.1.0:0", "1.2.826.99:0"]})
    assert response.status_code == 200
    body = response.content
    length = int.from_bytes(body[:4], "little")
    entries = json.loads(body[4:4 + length])
    assert [entry.get("status") for entry in entries] == [None, None, 404]
    first = entries[0]
    values = np.frombuffer(body[4 + length + first["offset"]:][:first["length"]],
                           dtype="<i2" if first["type"] == "int16" else "<f4")
    single = client.get(f"/studies/{study.study_instance_uid}/instances/1.2.826.17.9.1.2/pixels")
    assert values.tobytes() == single.content  # the same values as the one-frame endpoint
    assert client.get(url).status_code == 400
    assert client.get(url, {"f": ["x:0"] * 33}).status_code == 400
    assert client.get(url, {"f": "1.2.826.17.9.1.0:first"}).status_code == 400
