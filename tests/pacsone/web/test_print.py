"""DICOM print from the browser, against dcmtk's dcmprscp (grayscale) and a pynetdicom colour
print SCP: a CT series on a 2x2 film, read back from what the printer stored; the printer
registry pages and command; a printer that is down; the Print privilege and visibility."""

import datetime
import io

import pytest
from django.core.management import call_command
from PIL import Image
from pydicom import dcmread

from audit.models import Entry
from pacsone import film
from pacsone.models import Instance, Printer, Study
from routing.models import Job
from tests.helpers import free_port, ingest_instance, make_dataset, write_dataset
from tests.pacsone.dicom.print_peers import ColourPrintSCP, Dcmprscp
from tests.people import make_user

pytestmark = pytest.mark.django_db(transaction=True)

STUDY = "1.2.826.0.1.3680043.10.77.1"
SERIES = STUDY + ".1"
HIDDEN = "1.2.826.0.1.3680043.10.77.2"
IMAGES = 6  # on a 2x2 film: two sheets, the second half full


@pytest.fixture
def archive(tmp_path):
    """A six-image CT series (64x64, a soft-tissue window in its header) that names Dr Smith,
    and a study of another patient that names nobody."""
    for number in range(1, IMAGES + 1):
        ds = make_dataset(study_uid=STUDY, series_uid=SERIES, sop_uid=f"{SERIES}.{number}", rows=64,
                          InstanceNumber=number, ReferringPhysicianName="SMITH^JANE", SeriesNumber=1,
                          WindowCenter=400 + 100 * number, WindowWidth=800, RescaleSlope=1, RescaleIntercept=-1024)
        ingest_instance(write_dataset(ds, tmp_path / f"{number}.dcm"))
    ingest_instance(write_dataset(make_dataset(study_uid=HIDDEN, patient_id="P2", ReferringPhysicianName="JONES^BOB"),
                                  tmp_path / "hidden.dcm"))
    return tmp_path


@pytest.fixture
def dcmprscp(tmp_path):
    peer = Dcmprscp(tmp_path / "dcmprscp")
    yield peer
    peer.stop()


@pytest.fixture
def colour_scp():
    peer = ColourPrintSCP()
    yield peer
    peer.stop()


def register(host_port, ae_title: str, **fields) -> Printer:
    fields = {"display_format": "STANDARD\\2,2", "film_size_id": "14INX17IN", "medium_type": "BLUE FILM",
              "film_destination": "PROCESSOR", "magnification_type": "REPLICATE", **fields}
    return Printer.objects.create(ae_title=ae_title, host="127.0.0.1", port=host_port, **fields)


def printing_user():
    """Dr Smith: Print, no View: she sees the study that names her, not the other one."""
    return make_user("smith", ["print"], first_name="Jane", last_name="Smith")


def retry_now(job, peer) -> None:
    """Run the job's next attempt now (the clock moved past its back-off), the peer's record fresh."""
    from routing import clock
    from routing.runner import run_due

    peer.forget()
    later = clock.now() + datetime.timedelta(minutes=5)
    original = clock.now
    clock.now = lambda: later
    try:
        assert run_due() == [job.pk]
    finally:
        clock.now = original
    job.refresh_from_db()


def choose_series(client) -> None:
    response = client.post("/print/select/", {"series": f"{STUDY}/{SERIES}"})
    assert response.status_code == 302 and response["Location"] == "/print/"


def test_a_ct_series_prints_on_a_2x2_film_to_dcmprscp_which_stores_it(client, archive, dcmprscp):
    printer = register(dcmprscp.port, dcmprscp.ae_title, copies=2)
    client.force_login(printing_user())
    choose_series(client)
    page = client.get("/print/", {"printer": printer.pk})
    text = page.content.decode()
    assert page.status_code == 200 and "Print 6 images of 1 study" in text and "2 sheets" in text
    assert Entry.objects.filter(action="view", target="print preview", study_uid=STUDY).count() == 1
    assert 'alt="film sheet 2"' in text and 'alt="film sheet 3"' not in text
    preview = client.get("/print/sheet/1.png", {"printer": printer.pk})
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    sheet = Image.open(io.BytesIO(preview.content))
    assert sheet.height == film.PREVIEW_HEIGHT and 0.8 < sheet.width / sheet.height < 0.84  # 14x17 portrait
    assert client.get("/print/sheet/3.png", {"printer": printer.pk}).status_code == 404

    response = client.post("/print/", {"printer": printer.pk, "layout": "STANDARD\\2,2", "copies": 2})
    job = Job.objects.get(kind=Job.Kind.PRINT)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.state == Job.State.DONE, job.message
    assert (job.done, job.total) == (2, 2) and "6 images printed on 2 sheets" in job.message

    hardcopies = [dcmread(path) for path in dcmprscp.stored("HG")]
    assert len(hardcopies) == IMAGES
    assert {(ds.Rows, ds.Columns, ds.PhotometricInterpretation, ds.BitsStored) for ds in hardcopies} == {
        (64, 64, "MONOCHROME2", 8)}
    # Each printed image is the instance rendered in its own window (the header's differ).
    expected = {film.print_image(instance, color=False).tobytes() for instance in Instance.objects.filter(
        series__series_instance_uid=SERIES)}
    assert {ds.PixelData[:64 * 64] for ds in hardcopies} == expected and len(expected) == IMAGES
    sessions = [dcmread(path) for path in dcmprscp.stored("SP")]
    assert sessions and all(str(box.ImageDisplayFormat) == "STANDARD\\2,2" for ds in sessions
                            for box in ds.FilmBoxContentSequence)
    assert {str(ds.FilmBoxContentSequence[0].FilmSizeID) for ds in sessions} == {"14INX17IN"}

    entries = Entry.objects.filter(action="print", study_uid=STUDY).order_by("pk")
    assert [e.outcome for e in entries] == ["success", "success"]  # asked, then printed
    assert "6 images" in entries[0].detail and "2 copies" in entries[0].detail and entries[0].username == "smith"


def test_a_grayscale_only_printer_refuses_colour_and_the_job_fails_with_the_reason(client, archive, dcmprscp):
    printer = register(dcmprscp.port, dcmprscp.ae_title, color=True)
    client.force_login(printing_user())
    choose_series(client)
    client.post("/print/", {"printer": printer.pk})
    job = Job.objects.get(kind=Job.Kind.PRINT)
    assert job.state == Job.State.FAILED and job.attempts == 1
    assert "does not support Basic Color Print Management" in job.message
    assert dcmprscp.stored("HG") == []
    assert Entry.objects.filter(action="print", study_uid=STUDY, outcome="failure").exists()


def test_a_colour_printer_receives_rgb_images_colour_by_plane(client, archive, colour_scp):
    printer = register(colour_scp.port, colour_scp.ae_title, color=True, display_format="STANDARD\\3,3")
    client.force_login(printing_user())
    client.post("/print/select/", {"image": [f"{STUDY}/{SERIES}.2", f"{STUDY}/{SERIES}.5"]})
    client.post("/print/", {"printer": printer.pk})
    job = Job.objects.get(kind=Job.Kind.PRINT)
    if job.state == Job.State.QUEUED and "did not answer" in job.last_error:
        # pynetdicom's Print SCP (the test's peer) now and then ignores a request on a loaded
        # machine ("Received unexpected N-SET"); the job layer retries, as a user would see.
        retry_now(job, colour_scp)
    assert job.state == Job.State.DONE, job.message
    assert colour_scp.layouts == ["STANDARD\\3,3"]
    assert colour_scp.requests == ["create session", "create film box", "set image box", "set image box", "print",
                                   "delete", "delete"]
    images = [box.BasicColorImageSequence[0] for box in colour_scp.images]
    assert [(i.SamplesPerPixel, i.PhotometricInterpretation, i.PlanarConfiguration, i.Rows) for i in images] == [
        (3, "RGB", 1, 64)] * 2
    assert len(images[0].PixelData) == 3 * 64 * 64
    assert [box.ImageBoxPosition for box in colour_scp.images] == [1, 2]


def test_a_printer_that_is_down_is_retried_then_the_job_fails_with_the_reason(client, archive, monkeypatch):
    from routing import clock
    from routing.runner import run_due

    printer = register(free_port(), "GONE")
    client.force_login(printing_user())
    choose_series(client)
    client.post("/print/", {"printer": printer.pk})
    job = Job.objects.get(kind=Job.Kind.PRINT)
    assert job.state == Job.State.QUEUED and job.attempts == 1 and "cannot be reached" in job.last_error
    start = clock.now()
    for minutes in (2, 5):  # past each back-off
        monkeypatch.setattr(clock, "now", lambda minutes=minutes: start + datetime.timedelta(minutes=minutes))
        assert run_due() == [job.pk]
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.attempts == 3
    assert "failed after 3 attempts" in job.message and "GONE at 127.0.0.1" in job.message


def test_a_retry_prints_only_the_sheets_the_printer_had_not_accepted(client, archive, colour_scp, monkeypatch):
    from pacsone.dicom import printing
    from routing import clock
    from routing.runner import run_due

    printer = register(colour_scp.port, colour_scp.ae_title, display_format="STANDARD\\1,1")
    colour_scp.stall_print, colour_scp.stall_seconds = 2, 2.5  # sheet 2's print is not answered in time
    monkeypatch.setattr(printing, "TIMEOUT_SECONDS", 1)
    client.force_login(printing_user())
    client.post("/print/select/", {"image": [f"{STUDY}/{SERIES}.{n}" for n in (1, 2, 3)]})
    client.post("/print/", {"printer": printer.pk})
    job = Job.objects.get(kind=Job.Kind.PRINT)
    assert job.state == Job.State.QUEUED and job.done == 1 and "did not answer Film Box N-ACTION" in job.last_error
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start + datetime.timedelta(minutes=2))
    assert run_due() == [job.pk]
    job.refresh_from_db()
    assert job.state == Job.State.DONE and (job.done, job.total) == (3, 3), job.message
    assert colour_scp.requests.count("set image box") == 4  # 1 and 2, then 2 again and 3: never 1 twice
    assert Entry.objects.filter(action="print", study_uid=STUDY, outcome="failure",
                                detail__contains="will retry").count() == 1


def test_without_print_every_print_page_is_403_and_journaled(client, archive, dcmprscp):
    printer = register(dcmprscp.port, dcmprscp.ae_title)
    client.force_login(make_user("viewer", ["view"]))
    for method, url, data in [("post", "/print/select/", {"study": STUDY}), ("get", "/print/", {}),
                              ("post", "/print/", {"printer": printer.pk}), ("get", "/print/sheet/1.png", {})]:
        assert getattr(client, method)(url, data).status_code == 403, url
    assert Entry.objects.filter(outcome="denied", target__startswith="/print/").count() == 4
    assert not Job.objects.filter(kind=Job.Kind.PRINT).exists()
    assert client.get("/").content.count(b"Print\xe2\x80\xa6") == 0


def test_a_study_the_user_may_not_see_cannot_be_printed(client, archive, dcmprscp):
    printer = register(dcmprscp.port, dcmprscp.ae_title)
    client.force_login(printing_user())
    for data in ({"study": HIDDEN}, {"study": [STUDY, HIDDEN]}, {"series": f"{HIDDEN}/{HIDDEN}.1"},
                 {"image": f"{HIDDEN}/1.2.3"}, {"image": "no-slash"}):
        assert client.post("/print/select/", data).status_code == 404, data
    assert Entry.objects.filter(action="print", outcome="denied", study_uid=HIDDEN).count() == 4
    assert "Nothing to print" in client.get("/print/").content.decode()  # a refused choice is not kept
    # A selection that was visible and is hidden since is refused when printed.
    choose_series(client)
    Study.objects.filter(study_instance_uid=STUDY).update(referring_physician_name="OTHER^DOCTOR")
    assert client.post("/print/", {"printer": printer.pk}).status_code == 404
    assert not Job.objects.filter(kind=Job.Kind.PRINT).exists()


def test_the_print_page_offers_the_selection_and_refuses_bad_choices(client, archive, dcmprscp):
    printer = register(dcmprscp.port, dcmprscp.ae_title)
    client.force_login(printing_user())
    study_page = client.get(f"/studies/{STUDY}/").content.decode()
    assert study_page.count("/print/select/") >= 2  # the study and its series
    assert f'value="{STUDY}/{SERIES}.1"' in client.get(f"/studies/{STUDY}/series/{SERIES}/").content.decode()
    assert 'formaction="/print/select/"' in client.get("/").content.decode()
    client.post("/print/select/", {"study": STUDY})
    page = client.get("/print/", {"printer": printer.pk, "layout": "STANDARD\\9,99", "copies": "0"}).content.decode()
    assert "a layout has 1 to 10 columns and rows" in page and "Ensure this value is greater than" in page
    assert not Job.objects.filter(kind=Job.Kind.PRINT).exists()
    page = client.get("/print/", {"printer": printer.pk, "layout": "standard\\3,1"}).content.decode()
    assert "STANDARD\\3,1" in page and "2 sheets" in page
    printer.enabled = False
    printer.save()
    assert "No printer is ready" in client.get("/print/").content.decode()


def test_images_are_bounded_for_the_printer(archive, tmp_path):
    big = ingest_instance(write_dataset(make_dataset(study_uid=STUDY, series_uid=STUDY + ".9", rows=1500),
                                        tmp_path / "big.dcm"))
    assert film.print_image(big, color=False).size == (film.MAX_IMAGE_SIDE, film.MAX_IMAGE_SIDE)
    assert film.print_image(big, color=True).mode == "RGB"
    assert film.sheets(list(range(7)), (2, 2)) == [[0, 1, 2, 3], [4, 5, 6]]


def test_the_printer_registry_pages_are_for_system_administration(client, dcmprscp, colour_scp):
    client.force_login(make_user("admin", ["system_admin"]))
    response = client.post("/printers/add/", {
        "ae_title": dcmprscp.ae_title, "host": "127.0.0.1", "port": dcmprscp.port, "film_size_id": "14INX17IN",
        "orientation": "PORTRAIT", "display_format": "standard\\2,2", "copies": 1, "enabled": "on"})
    assert response.status_code == 302
    printer = Printer.objects.get()
    assert printer.display_format == "STANDARD\\2,2" and not printer.color
    bad = client.post("/printers/add/", {"ae_title": "X", "host": "bad host!", "port": 0, "film_size_id": "14INX17IN",
                                         "orientation": "PORTRAIT", "display_format": "2x2", "copies": 100})
    assert bad.status_code == 200 and Printer.objects.count() == 1
    for problem in ("is not an IP address", "is not a layout of the form", "less than or equal to 99"):
        assert problem in bad.content.decode()
    verified = client.post(f"/printers/{printer.pk}/verify/", follow=True).content.decode()
    assert "answered C-ECHO, offers Basic Grayscale Print Management, printer status NORMAL" in verified
    assert "Remove printer" in client.get(f"/printers/{printer.pk}/delete/").content.decode()
    assert Printer.objects.count() == 1  # asked first
    client.post(f"/printers/{printer.pk}/delete/")
    assert not Printer.objects.exists()
    details = list(Entry.objects.filter(target=f"printer {dcmprscp.ae_title}").order_by("pk")
                   .values_list("detail", flat=True))
    assert [d.split(":")[0] for d in details] == ["added", "verify", "removed"]

    wrong = register(colour_scp.port, "NOTTHISONE")
    refused = client.post(f"/printers/{wrong.pk}/verify/", follow=True).content.decode()
    assert "NOTTHISONE rejected the association: Called AE title not recognised" in refused

    client.force_login(make_user("printer", ["print", "view"]))
    for url in ("/printers/", "/printers/add/"):
        assert client.get(url).status_code == 403


def test_the_printers_command(capsys):
    call_command("printers", "add", "DRYSTAR", "10.0.0.7", "5040", "--layout", "STANDARD\\3,4", "--color",
                 "--film-size", "8INX10IN", "--copies", "2")
    call_command("printers", "add", "DRYSTAR", "10.0.0.8", "5040", "--disabled")
    call_command("printers", "list")
    out = capsys.readouterr().out
    assert "DRYSTAR@10.0.0.8:5040 colour STANDARD\\3,4 8INX10IN PORTRAIT" in out and "copies=2 disabled" in out
    from django.core.management.base import CommandError
    with pytest.raises(CommandError, match="is not a layout"):
        call_command("printers", "add", "OTHER", "10.0.0.9", "5040", "--layout", "4x4")
    call_command("printers", "remove", "DRYSTAR")
    assert not Printer.objects.exists()
    assert list(Entry.objects.filter(username="(shell)").values_list("detail", flat=True).order_by("pk"))[0].startswith(
        "added: DRYSTAR@10.0.0.7")
