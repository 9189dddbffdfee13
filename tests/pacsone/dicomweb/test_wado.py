"""WADO-RS with a real client: retrieve (Download privilege; transfer syntax as asked, transcoded
when needed), metadata with BulkDataURI, bulk data, frames, rendered images and thumbnails; a
hidden study is a 404; every request is one journal entry for its study."""

import io

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from requests import HTTPError

from audit.models import Action, Entry, Outcome
from pacsone.models import Instance
from tests.helpers import ingest_instance, make_dataset, pydicom_file, write_dataset
from tests.people import make_user

from .conftest import CT_SERIES, CT_STUDY, SLICES, client_for

pytestmark = pytest.mark.django_db(transaction=True)

ELE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"


def status_of(call) -> int:
    with pytest.raises(HTTPError) as refused:
        call()
    return refused.value.response.status_code


@pytest.fixture
def downloader(world):
    return make_user("dl", ["download", "view"], first_name="Dee", last_name="Load")


@pytest.fixture
def rle_instance(world):
    """pydicom's RLE MR, in a public study."""
    from pacsone.visibility import set_patient_public

    instance = ingest_instance(pydicom_file("MR_small_RLE.dcm"))
    set_patient_public(instance.series.study.patient, True)
    return Instance.objects.select_related("series__study").get(pk=instance.pk)


def test_a_study_is_retrieved_whole_and_journaled_once(live_server, world, ct_study, downloader):
    before = Entry.objects.order_by("-id").first().pk
    datasets = client_for(live_server, downloader).retrieve_study(CT_STUDY)
    assert sorted(ds.InstanceNumber for ds in datasets) == list(range(1, SLICES + 1))
    assert all(ds.file_meta.TransferSyntaxUID == ELE for ds in datasets)
    stored = dcmread(Instance.objects.get(sop_instance_uid=f"{CT_SERIES}.1").storage_location.path + "/" +
                     Instance.objects.get(sop_instance_uid=f"{CT_SERIES}.1").file_path)
    first = next(ds for ds in datasets if ds.InstanceNumber == 1)
    assert first.PixelData == stored.PixelData
    entries = [e for e in Entry.objects.filter(id__gt=before) if e.action == Action.DOWNLOAD]
    assert len(entries) == 1 and entries[0].study_uid == CT_STUDY and entries[0].username == "dl"


def test_series_and_instance_retrieve(live_server, world, ct_study, downloader):
    client = client_for(live_server, downloader)
    assert len(client.retrieve_series(CT_STUDY, CT_SERIES)) == SLICES
    ds = client.retrieve_instance(CT_STUDY, CT_SERIES, f"{CT_SERIES}.2")
    assert ds.SOPInstanceUID == f"{CT_SERIES}.2"


def test_a_compressed_instance_is_transcoded_unless_any_syntax_is_accepted(live_server, world, rle_instance,
                                                                            downloader):
    client = client_for(live_server, downloader)
    study, series = rle_instance.series.study.study_instance_uid, rle_instance.series.series_instance_uid
    sop = rle_instance.sop_instance_uid
    original = dcmread(pydicom_file("MR_small_RLE.dcm"))
    plain = client.retrieve_instance(study, series, sop, media_types=(("application/dicom", ELE),))
    assert plain.file_meta.TransferSyntaxUID == ELE
    assert np.array_equal(plain.pixel_array, original.pixel_array)
    as_stored = client.retrieve_instance(study, series, sop)  # dicomweb-client asks transfer-syntax=*
    assert as_stored.file_meta.TransferSyntaxUID == RLE and as_stored.PixelData == original.PixelData
    # A compressed syntax other than the stored one cannot be made here: 406, not a wrong file.
    assert status_of(lambda: client.retrieve_instance(
        study, series, sop, media_types=(("application/dicom", "1.2.840.10008.1.2.4.80"),))) == 406
    # No transfer-syntax parameter: Explicit VR Little Endian (PS3.18 8.7.3.5.2), for a whole study too.
    [default] = client.retrieve_study(study, media_types=("application/dicom",))
    assert default.file_meta.TransferSyntaxUID == ELE


def test_retrieve_needs_the_download_privilege(live_server, world, ct_study):
    client = client_for(live_server, world.users["power"])  # View, no Download
    before = Entry.objects.order_by("-id").first().pk
    assert status_of(lambda: client.retrieve_study(CT_STUDY)) == 403
    denied = Entry.objects.filter(id__gt=before, outcome=Outcome.DENIED)
    assert denied.count() == 1
    # Viewing (metadata, frames) needs no Download: OHIF works for every reader.
    assert len(client.retrieve_series_metadata(CT_STUDY, CT_SERIES)) == SLICES
    # A study the caller may not see is a 404 before the privilege is asked: it does not exist for them.
    physician = client_for(live_server, world.users["physician"])  # no Download, does not see "other"
    assert status_of(lambda: physician.retrieve_study(world.studies["other"].study_instance_uid)) == 404
    assert status_of(lambda: physician.retrieve_study(CT_STUDY)) == 403


def test_a_hidden_study_is_404_everywhere(live_server, world):
    dl_only = make_user("dlonly", ["download"], first_name="Dan", last_name="Only")  # sees public only
    client = client_for(live_server, dl_only)
    other = world.studies["other"]
    instance = Instance.objects.select_related("series").get(series__study=other)
    series, sop = instance.series.series_instance_uid, instance.sop_instance_uid
    for call in (lambda: client.retrieve_study(other.study_instance_uid),
                 lambda: client.retrieve_series(other.study_instance_uid, series),
                 lambda: client.retrieve_instance(other.study_instance_uid, series, sop),
                 lambda: client.retrieve_study_metadata(other.study_instance_uid),
                 lambda: client.retrieve_instance_frames(other.study_instance_uid, series, sop, [1]),
                 lambda: client.retrieve_instance_rendered(other.study_instance_uid, series, sop)):
        assert status_of(call) == 404
    public = world.studies["public"].study_instance_uid
    assert len(client.retrieve_study(public)) == 1
    # The same answer for a study that does not exist at all.
    assert status_of(lambda: client.retrieve_study("1.2.3.4.5.6.7")) == 404


def test_metadata_carries_bulk_data_as_uris_that_resolve(live_server, world, tmp_path):
    lut = bytes(range(256)) * 8  # 2 kB: above the inline threshold
    ds = make_dataset(study_uid="1.2.826.8.1", series_uid="1.2.826.8.1.1", sop_uid="1.2.826.8.1.1.1",
                      patient_id="BULK1")
    ds.add_new(0x00283006, "OW", lut)  # LUT Data
    ingest_instance(write_dataset(ds, tmp_path / "bulk.dcm"))
    client = client_for(live_server, world.users["root"])
    metadata = client.retrieve_instance_metadata("1.2.826.8.1", "1.2.826.8.1.1", "1.2.826.8.1.1.1")
    uri = metadata["00283006"]["BulkDataURI"]
    assert uri.endswith("/dicomweb/studies/1.2.826.8.1/series/1.2.826.8.1.1/instances/1.2.826.8.1.1.1/bulkdata/00283006")
    assert client.retrieve_bulkdata(uri) == [lut]
    assert metadata["00100020"]["Value"] == ["BULK1"] and metadata["00083002"]["Value"] == [ELE]


def test_frames_native_and_as_stored(live_server, world, ct_study, rle_instance):
    client = client_for(live_server, world.users["physician"])
    [frame] = client.retrieve_instance_frames(CT_STUDY, CT_SERIES, f"{CT_SERIES}.1", [1])
    stored = make_dataset(rows=32)
    assert frame == stored.PixelData
    study, series = rle_instance.series.study.study_instance_uid, rle_instance.series.series_instance_uid
    original = dcmread(pydicom_file("MR_small_RLE.dcm"))
    [native] = client.retrieve_instance_frames(study, series, rle_instance.sop_instance_uid, [1])
    assert np.array_equal(np.frombuffer(native, "<i2").reshape(64, 64), original.pixel_array)
    [rle] = client.retrieve_instance_frames(study, series, rle_instance.sop_instance_uid, [1],
                                            media_types=(("application/octet-stream", "*"),))
    assert rle[:4] != native[:4] and len(rle) < len(native)
    assert status_of(lambda: client.retrieve_instance_frames(CT_STUDY, CT_SERIES, f"{CT_SERIES}.1", [2])) == 404


def test_rendered_and_thumbnail(live_server, world, ct_study, client):
    dicomweb = client_for(live_server, world.users["physician"])
    png = dicomweb.retrieve_instance_rendered(CT_STUDY, CT_SERIES, f"{CT_SERIES}.1", media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).size == (32, 32)
    jpeg = dicomweb.retrieve_instance_rendered(CT_STUDY, CT_SERIES, f"{CT_SERIES}.1",
                                             params={"window": "40,400,linear", "viewport": "16,16"})
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (16, 16)
    web = client  # the pytest-django test client (dicomweb-client has no thumbnail call)
    web.force_login(world.users["physician"])
    for path in (f"/dicomweb/studies/{CT_STUDY}/thumbnail", f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/thumbnail",
                 f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SERIES}.2/thumbnail"):
        thumb = web.get(path, HTTP_ACCEPT="image/jpeg")
        assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"


@pytest.mark.parametrize("path, status", [
    ("/dicomweb/studies/1.2.x", 400),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2..3", 400),
    ("/dicomweb/studies/1.2.826.7.1/series/..%2F..", 404),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2.826.7.1.1/instances/1.2.826.7.1.1.1/frames/0", 400),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2.826.7.1.1/instances/1.2.826.7.1.1.1/frames/a,b", 400),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2.826.7.1.1/instances/1.2.826.7.1.1.1/bulkdata/zz", 400),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2.826.7.1.1/instances/1.2.826.7.1.1.9", 404),
    ("/dicomweb/studies/1.2.826.7.1/series/1.2.826.9/instances/1.2.826.7.1.1.1/metadata", 404),
])
def test_bad_paths(client, world, ct_study, path, status):
    client.force_login(world.users["root"])
    assert client.get(path).status_code == status


def test_unacceptable_media_types_are_406(client, world, ct_study):
    client.force_login(world.users["root"])
    base = f"/dicomweb/studies/{CT_STUDY}/series/{CT_SERIES}/instances/{CT_SERIES}.1"
    assert client.get(base, HTTP_ACCEPT="application/pdf").status_code == 406
    assert client.get(base + "/metadata", HTTP_ACCEPT="application/dicom+xml").status_code == 406
    assert client.get(base + "/rendered", HTTP_ACCEPT="video/mp4").status_code == 406
    assert client.get(base + "/frames/1", HTTP_ACCEPT='multipart/related; type="image/jp2"').status_code == 406


def test_bulk_data_inside_sequences_has_uris_that_resolve_under_the_same_rules(live_server, world, tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    lut, icon = bytes(range(256)) * 8, bytes(range(64)) * 64  # above the inline threshold
    ds = make_dataset(study_uid="1.2.826.8.2", series_uid="1.2.826.8.2.1", sop_uid="1.2.826.8.2.1.1",
                      patient_id="BULK2")
    first, second = Dataset(), Dataset()
    first.LUTDescriptor, first.ModalityLUTType = [256, 0, 16], "HU"
    second.LUTDescriptor, second.ModalityLUTType = [256, 0, 16], "HU"
    second.add_new(0x00283006, "OW", lut)
    ds.ModalityLUTSequence = Sequence([first, second])
    item = Dataset()
    item.Rows = item.Columns = 64
    item.SamplesPerPixel, item.BitsAllocated, item.BitsStored, item.HighBit = 1, 8, 8, 7
    item.PhotometricInterpretation, item.PixelRepresentation = "MONOCHROME2", 0
    item.add_new(0x7FE00010, "OB", icon)
    ds.IconImageSequence = Sequence([item])
    ingest_instance(write_dataset(ds, tmp_path / "nested.dcm"))
    client = client_for(live_server, world.users["root"])
    metadata = client.retrieve_instance_metadata("1.2.826.8.2", "1.2.826.8.2.1", "1.2.826.8.2.1.1")
    lut_uri = metadata["00283000"]["Value"][1]["00283006"]["BulkDataURI"]
    icon_uri = metadata["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert lut_uri.endswith("/instances/1.2.826.8.2.1.1/bulkdata/00283000/1/00283006")
    assert icon_uri.endswith("/instances/1.2.826.8.2.1.1/bulkdata/00880200/0/7FE00010")
    assert client.retrieve_bulkdata(lut_uri) == [lut]
    assert client.retrieve_bulkdata(icon_uri) == [icon]
    # A user who may not see the study: the same 404 as for anything else of it, journaled.
    outsider = client_for(live_server, world.users["outsider"])
    assert status_of(lambda: outsider.retrieve_bulkdata(lut_uri)) == 404
    assert Entry.objects.filter(username="outsider", study_uid="1.2.826.8.2", outcome=Outcome.DENIED).exists()
    # Paths that name nothing, or are not paths.
    base = lut_uri.rsplit("/bulkdata/", 1)[0] + "/bulkdata/"
    for path, status in (("00283000/0/00283006", 404), ("00283000/5/00283006", 404), ("00100010/0/00283006", 404),
                         ("00283000/1", 400), ("00283000/x/00283006", 400), ("00283000/-1/00283006", 400),
                         ("/".join(["00283000", "0"] * 9 + ["00283006"]), 400)):
        assert status_of(lambda: client.retrieve_bulkdata(base + path)) == status, path
