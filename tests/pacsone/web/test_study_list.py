"""The worklist-grade study list (issue 17): one search box (name by any of its words in any
order, implicit prefix, accents and case ignored; patient ID and accession), modality chips,
Today / Yesterday / 7 / 30 days, sortable columns, thumbnails, bulk actions each with its
privilege, empty states that say why, invalid input next to its field with no result claimed."""

import datetime

import pytest
from django.utils import timezone

from audit.models import Entry
from pacsone.models import Study
from tests.people import make_study, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive():
    today = timezone.localdate()
    make_study("1.2.826.17.1", "MRN1", patient_name="DOE^JOHN", modality="CT", study_date=today, accession="ACC100")
    make_study("1.2.826.17.2", "MRN2", patient_name="MÜLLER^HANS", modality="MR",
               study_date=today - datetime.timedelta(days=1), accession="ACC200")
    make_study("1.2.826.17.3", "X77", patient_name="ROE^JANE^Q^DR^MD", modality="US",
               study_date=today - datetime.timedelta(days=20))
    make_study("1.2.826.17.4", "MRN4", patient_name="JOHNSON^MARY", modality="CT",
               study_date=today - datetime.timedelta(days=100))


def listed(client, **params) -> set[str]:
    response = client.get("/", params)
    assert response.status_code == 200
    return {study.study_instance_uid for study in response.context["page"]}


@pytest.fixture
def viewer(client):
    client.force_login(make_user("viewer", ["view"]))
    return client


@pytest.mark.parametrize("text,expected", [
    ("doe", {"1.2.826.17.1"}),
    ("DOE", {"1.2.826.17.1"}),
    ("john doe", {"1.2.826.17.1"}),
    ("DOE, JOHN", {"1.2.826.17.1"}),
    ("doe^jo", {"1.2.826.17.1"}),
    ("john", {"1.2.826.17.1", "1.2.826.17.4"}),  # a given name, and the start of JOHNSON
    ("oe", set()),  # a prefix of a word, not any part of it
    ("muller", {"1.2.826.17.2"}),
    ("Müller hans", {"1.2.826.17.2"}),
    ("jane roe", {"1.2.826.17.3"}),
    ("mrn", {"1.2.826.17.1", "1.2.826.17.2", "1.2.826.17.4"}),  # patient IDs
    ("x77", {"1.2.826.17.3"}),
    ("ACC2", {"1.2.826.17.2"}),  # accession
])
def test_the_search_box_finds_names_ids_and_accessions(viewer, archive, text, expected):
    assert listed(viewer, q=text) == expected


def test_too_many_words_are_refused_next_to_the_box_with_no_result_claimed(viewer, archive):
    response = viewer.get("/", {"q": "a b c d e f g"})
    page = response.content.decode()
    assert 'class="field-error" id="q-problem"' in page and "found" not in page
    assert "No search was run" in page and not response.context["page"].object_list


def test_the_period_chips_filter_by_study_date(viewer, archive):
    assert listed(viewer, period="today") == {"1.2.826.17.1"}
    assert listed(viewer, period="yesterday") == {"1.2.826.17.2"}
    assert listed(viewer, period="7d") == {"1.2.826.17.1", "1.2.826.17.2"}
    assert listed(viewer, period="30d") == {"1.2.826.17.1", "1.2.826.17.2", "1.2.826.17.3"}
    response = viewer.get("/", {"period": "fortnight"})
    assert "period must be one of" in response.content.decode() and not response.context["page"].object_list


def test_modality_chips_choose_several_and_keep_the_search(viewer, archive):
    assert listed(viewer, modality=["CT", "MR"]) == {"1.2.826.17.1", "1.2.826.17.2", "1.2.826.17.4"}
    page = viewer.get("/", {"q": "doe", "modality": "CT"}).content.decode()
    # The MR chip adds MR to CT and keeps the search box's text; the CT chip takes CT away.
    assert 'href="?q=doe&amp;modality=CT&amp;modality=MR"' in page
    assert 'class="chip on" href="?q=doe"' in page


def test_a_reversed_date_range_is_shown_next_to_its_field_with_no_results(viewer, archive):
    response = viewer.get("/", {"date_from": "2026-11-30", "date_to": "2026-11-01"})
    page = response.content.decode()
    assert "The end date is before the start date." in page and "found" not in page
    assert "<details class=\"detailed\" open>" in page  # the field with the problem is shown


def test_a_reversed_dicom_date_range_in_the_url_is_refused_too(viewer, archive):
    # The REST API and bookmarked URLs use study_date=A-B: reversed, it was 0 studies "in all".
    page = viewer.get("/", {"study_date": "20261130-20261101"}).content.decode()
    assert "The end date is before the start date." in page and "in all" not in page.split("<h1>")[1][:200]
    assert "in all" in viewer.get("/", {"study_date": "2026-11-30"}).content.decode()  # one ISO date is no range


def test_an_invalid_date_claims_no_results(viewer, archive):
    page = viewer.get("/", {"date_from": "30/11/2026"}).content.decode()
    assert "is not a date" in page and " found" not in page and "in all" not in page.split("<h1>")[1][:200]


@pytest.mark.parametrize("sort", ["modality", "-modality", "description", "-description", "images", "-images"])
def test_modality_description_and_images_sort(viewer, archive, sort):
    Study.objects.filter(study_instance_uid="1.2.826.17.3").update(number_of_instances=9, study_description="ABDOMEN")
    Study.objects.filter(study_instance_uid="1.2.826.17.1").update(number_of_instances=2, study_description="CHEST",
                                                                    modalities_in_study="CT")
    Study.objects.filter(study_instance_uid="1.2.826.17.2").update(modalities_in_study="MR")
    response = viewer.get("/", {"sort": sort})
    order = [study.study_instance_uid for study in response.context["page"]]
    assert response.status_code == 200 and len(order) == 4 and "cannot sort" not in response.content.decode()
    field = {"modality": "modalities_in_study", "description": "study_description",
             "images": "number_of_instances"}[sort.lstrip("-")]
    values = [getattr(Study.objects.get(study_instance_uid=uid), field) for uid in order]
    assert values == sorted(values, reverse=sort.startswith("-"))


def test_without_view_the_empty_list_says_why(client, archive):
    client.force_login(make_user("physician", first_name="Ann", last_name="Other"))
    page = client.get("/").content.decode()
    assert "No study is shared with you yet" in page and "No studies yet" not in page


def test_bulk_mark_read_needs_mark_study_and_reaches_only_visible_studies(client, archive):
    uids = ["1.2.826.17.1", "1.2.826.17.2"]
    client.force_login(make_user("viewer", ["view"]))
    assert client.post("/actions/studies/", {"action": "read", "study": uids}).status_code == 403
    client.force_login(make_user("marker", ["view", "mark_study"]))
    assert client.post("/actions/studies/", {"action": "read", "study": uids}).status_code == 302
    assert set(Study.objects.filter(read=True).values_list("study_instance_uid", flat=True)) == set(uids)
    assert Entry.objects.filter(action="mark", detail="read=True").count() == 2
    # A study the user may not see in the selection: nothing is done, and the refusal is journaled.
    client.force_login(make_user("blind", ["mark_study"]))
    response = client.post("/actions/studies/", {"action": "unread", "study": uids})
    assert response.status_code == 302 and Study.objects.filter(read=True).count() == 2
    assert Entry.objects.filter(username="blind", outcome="denied").count() == 1


def test_bulk_delete_asks_first_then_moves_the_studies_to_the_trash(client, archive):
    uids = ["1.2.826.17.1", "1.2.826.17.2"]
    client.force_login(make_user("power", ["view", "modify"]))
    page = client.post("/actions/studies/", {"action": "delete", "study": uids, "next": "/?q=x"})
    text = page.content.decode()
    assert page.status_code == 200 and "Delete 2 studies" in text and "of DOE, John" in text and "of MÜLLER, Hans" in text
    assert not Study.objects.filter(trashed_at__isnull=False).exists()
    # The confirmation names exactly these studies: another selection is not confirmed by it.
    client.post("/actions/studies/", {"action": "delete", "study": uids[:1], "confirm_studies": " ".join(uids)})
    assert not Study.objects.filter(trashed_at__isnull=False).exists()
    done = client.post("/actions/studies/", {"action": "delete", "study": uids, "confirm_studies": " ".join(sorted(uids)),
                                              "next": "/?q=x"})
    assert done.status_code == 302 and done["Location"] == "/?q=x"
    assert set(Study.objects.filter(trashed_at__isnull=False).values_list("study_instance_uid", flat=True)) == set(uids)


def test_the_list_shows_names_ages_and_a_thumbnail_link(viewer, tmp_path):
    from pacsone.ingest import Origin, ingest_file
    from tests.helpers import make_file

    path = make_file(tmp_path, "a.dcm", patient_name="DOE^JOHN", PatientBirthDate="19800501", PatientSex="M",
                     StudyDate="20261130")
    assert ingest_file(path, Origin("import")).outcome.accepted
    study = Study.objects.get()
    sop = study.series.get().instances.get().sop_instance_uid
    page = viewer.get("/").content.decode()
    assert '<span class="pn" title="DOE^JOHN">DOE, John</span>' in page and "46 y, male" in page
    assert f'/studies/{study.study_instance_uid}/instances/{sop}/thumbnail' in page


def test_bulk_download_needs_download_and_streams_one_zip_of_the_selected_studies(client, tmp_path):
    import csv
    import io
    import zipfile
    from io import StringIO

    from django.core.management import call_command

    from tests.helpers import make_file

    uids = ["1.2.826.17.21", "1.2.826.17.22"]
    for number, uid in enumerate(uids):
        make_file(tmp_path, f"{number}.dcm", study_uid=uid, patient_id=f"D{number}")
    call_command("importdicom", str(tmp_path), "--no-progress", stdout=StringIO())
    client.force_login(make_user("viewer", ["view"]))
    assert client.post("/actions/studies/", {"action": "download", "study": uids}).status_code == 403
    client.force_login(make_user("downloader", ["view", "download"]))
    response = client.post("/actions/studies/", {"action": "download", "study": uids})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert sorted(name.split("/")[0] for name in names if name != "studies.csv") == sorted(uids)
    assert Entry.objects.filter(action="download", username="downloader").count() == 2
    manifest = zipfile.ZipFile(io.BytesIO(b"".join(client.post("/actions/studies/", {"action": "download", "study": uids})
                                                     .streaming_content))).read("studies.csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(manifest)))
    assert rows[0][:3] == ["Folder", "Patient", "Patient ID"] and sorted(row[0] for row in rows[1:]) == sorted(uids)
    assert {row[2] for row in rows[1:]} == {"D0", "D1"} and all(row[1] and "^" not in row[1] for row in rows[1:])


def test_the_archive_totals_are_cleared_for_every_web_worker(settings):
    # gunicorn runs several worker processes: a per-process cache left the others' totals up to
    # a minute stale after a delete. The cache lives in the data folder (or Redis) instead.
    from django.core.cache import caches

    from pacsone.stats import cached_archive_stats, forget_archive_stats

    assert settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache")
    cached_archive_stats()
    other_worker = caches.create_connection("default")  # as another process would open it
    assert other_worker.get("pacsone:archive-stats") is not None
    forget_archive_stats()
    assert other_worker.get("pacsone:archive-stats") is None
