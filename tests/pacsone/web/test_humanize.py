"""Human formatting in one place (pacsone.humanize): names, age and sex, one date/time format,
durations in words, counts; and the pages that show them."""

import datetime

import pytest
from django.utils import timezone

from pacsone import humanize
from tests.helpers import make_file
from tests.people import make_user


@pytest.mark.parametrize("raw,shown", [
    ("DOE^JOHN", "DOE, John"),
    ("ROE^JANE^Q^DR^MD", "Dr ROE, Jane Q, MD"),
    ("DOE^JOHN^^^", "DOE, John"),
    ("McDONALD^Ronald", "McDONALD, Ronald"),
    ("John Doe", "John Doe"),
    ("YAMADA^TARO=山田^太郎=やまだ^たろう", "YAMADA, Taro (山田 太郎 / やまだ たろう)"),
    ("=山田^太郎", "山田 太郎"),
    ("", ""),
])
def test_a_person_name_reads_as_people_write_it(raw, shown):
    assert humanize.person_name(raw) == shown


@pytest.mark.parametrize("born,on,age", [
    (datetime.date(1980, 5, 1), datetime.date(2026, 11, 30), "46 y"),
    (datetime.date(1980, 12, 1), datetime.date(2026, 11, 30), "45 y"),
    (datetime.date(2025, 1, 15), datetime.date(2026, 11, 30), "22 mo"),
    (datetime.date(2026, 11, 1), datetime.date(2026, 11, 30), "29 d"),
    (datetime.date(2027, 1, 1), datetime.date(2026, 11, 30), ""),
    (None, datetime.date(2026, 11, 30), ""),
])
def test_the_age_is_counted_on_the_day_given(born, on, age):
    assert humanize.age(born, on) == age


def test_age_and_sex_together():
    assert humanize.age_and_sex(datetime.date(1980, 5, 1), "F", datetime.date(2026, 11, 30)) == "46 y, female"
    assert humanize.age_and_sex(None, "M") == "male"
    assert humanize.age_and_sex(None, "") == ""


def test_one_date_and_time_format_in_the_servers_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    moment = datetime.datetime(2026, 11, 30, 7, 15, 9, tzinfo=datetime.timezone.utc)
    with timezone.override("Europe/Paris"):
        assert humanize.date_time(moment) == "2026-11-30 08:15"
        assert humanize.date_time(moment, seconds=True) == "2026-11-30 08:15:09"
    assert humanize.date("20261130") == humanize.date(datetime.date(2026, 11, 30)) == "2026-11-30"
    assert humanize.date("not a date") == ""
    assert humanize.study_when(datetime.date(2026, 11, 30), "081500.123") == "2026-11-30 08:15"
    assert humanize.dicom_time("2560") == ""


@pytest.mark.parametrize("value,words", [
    (45, "45 seconds"), (1, "1 second"), (1800, "30 minutes"), (3900, "1 hour 5 minutes"), (3600, "1 hour"),
    (2 * 86400 + 3 * 3600 + 60, "2 days 3 hours"), (datetime.timedelta(minutes=2), "2 minutes"),
    ("PT30M", "30 minutes"), ("P1DT2H", "1 day 2 hours"),
])
def test_durations_are_in_words(value, words):
    assert humanize.duration(value) == words


def test_counts_are_plural_without_parentheses():
    assert humanize.count(1, "study", "studies") == "1 study"
    assert humanize.count(1234, "study", "studies") == "1,234 studies"


@pytest.mark.django_db
def test_the_study_page_shows_the_name_age_and_dates_formatted(client, tmp_path):
    from pacsone.ingest import Origin, ingest_file

    path = make_file(tmp_path, "a.dcm", patient_name="ROE^JANE^Q^DR^MD", PatientBirthDate="19800501",
                     PatientSex="F", StudyDate="20261130", StudyTime="081500", ReferringPhysicianName="SMITH^ANNA")
    outcome = ingest_file(path, Origin("import")).outcome
    assert outcome.accepted
    client.force_login(make_user("viewer", ["view"]))
    from pacsone.models import Study

    study = Study.objects.get()
    page = client.get(f"/studies/{study.study_instance_uid}/").content.decode()
    assert '<span class="pn" title="ROE^JANE^Q^DR^MD">Dr ROE, Jane Q, MD</span>' in page
    assert "46 y, female" in page and "2026-11-30 08:15" in page
    assert '<span class="pn" title="SMITH^ANNA">SMITH, Anna</span>' in page
