"""The daily statistics rollup: past days are rolled up once and then read from StatsFigure;
a change to a day's studies (ingest into an older study, edit, deletion) makes the day stale;
today is always read from the index; a different time zone rolls the days up again."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from pacsone import stats_rollup
from pacsone.deletion import delete_study
from pacsone.models import StatsDay, StatsFigure, Study
from pacsone.stats import period_figures
from pacsone.stats_days import Period
from pacsone.tasks import after_ingest
from tests.stats_data import at, received

pytestmark = pytest.mark.django_db

NOV_14, NOV_17 = datetime.date(2026, 11, 14), datetime.date(2026, 11, 17)


def timeline(first=NOV_14, last=NOV_17) -> list[int]:
    return [row["instances"] for row in period_figures(Period(first, last, "day"))["timeline"]]


def test_past_days_are_rolled_up_once_and_then_read_from_the_rollup(django_assert_max_num_queries):
    received(at(2026, 11, 15, 8), modality="CT", ae="CT_ROOM1", instances=4)
    received(at(2026, 11, 17, 9), modality="MR", ae="MR_ROOM2", instances=2)
    assert timeline() == [0, 4, 0, 2]
    assert set(StatsDay.objects.values_list("day", flat=True)) == {NOV_14 + datetime.timedelta(days=n) for n in range(4)}
    assert set(StatsFigure.objects.filter(dimension="modality").values_list("day", "label", "instances")) == {
        (datetime.date(2026, 11, 15), "CT", 4), (NOV_17, "MR", 2)}
    # Rows added behind the rollup's back (no ingest, no stamp) are not seen: the figures are the rollup's.
    Study.objects.filter(number_of_instances=4).update(number_of_instances=40)
    # fresh days, days, breakdowns, failed jobs, refused stores, storage held and locations
    with django_assert_max_num_queries(7):
        figures = period_figures(Period(NOV_14, NOV_17, "day"))
    assert [row["instances"] for row in figures["timeline"]] == [0, 4, 0, 2]
    assert figures["by_source_ae"][0] == {"label": "CT_ROOM1", "studies": 1, "instances": 4, "bytes": 4000}


def test_ingest_into_an_older_study_rolls_its_day_up_again(django_capture_on_commit_callbacks):
    study = received(at(2026, 11, 15, 8), instances=4)
    assert timeline() == [0, 4, 0, 0]
    Study.objects.filter(pk=study.pk).update(number_of_instances=7)  # three more arrived today
    with django_capture_on_commit_callbacks(execute=True):
        after_ingest(study.pk)
    assert timeline() == [0, 7, 0, 0]


def test_a_deleted_study_leaves_the_figures_of_its_day(django_capture_on_commit_callbacks):
    kept = received(at(2026, 11, 15, 8), ae="KEPT", instances=4)
    gone = received(at(2026, 11, 15, 9), ae="GONE", instances=3)
    assert timeline() == [0, 7, 0, 0]
    with django_capture_on_commit_callbacks(execute=True):
        delete_study(gone)
    figures = period_figures(Period(NOV_14, NOV_17, "day"))
    assert [row["instances"] for row in figures["timeline"]] == [0, 4, 0, 0]
    assert [row["label"] for row in figures["by_source_ae"]] == [kept.source_ae]


def test_a_change_stamped_while_a_rollup_ran_keeps_the_day_stale():
    received(at(2026, 11, 15, 8), instances=4)
    stats_rollup.roll_up(NOV_14, NOV_17)
    day = StatsDay.objects.get(day=datetime.date(2026, 11, 15))
    # The change committed after the rollup began reading: stamped later than rolled_from.
    StatsDay.objects.filter(pk=day.pk).update(changed_at=day.rolled_from + datetime.timedelta(microseconds=1))
    assert stats_rollup.roll_up(NOV_14, NOV_17) == 1
    assert stats_rollup.roll_up(NOV_14, NOV_17) == 0


def test_today_is_read_from_the_index_and_never_rolled_up():
    today = timezone.localdate()
    received(timezone.now() - datetime.timedelta(minutes=1), modality="DX", instances=2)
    assert timeline(today, today) == [2]
    received(timezone.now() - datetime.timedelta(minutes=1), modality="DX", instances=3)
    figures = period_figures(Period(today - datetime.timedelta(days=1), today, "day"))
    assert [row["instances"] for row in figures["timeline"]][-1] == 5
    assert figures["by_modality"] == [{"label": "DX", "series": 2, "instances": 5}]
    assert not StatsDay.objects.filter(day=today).exists()


def test_another_time_zone_rolls_the_days_up_again():
    received(at(2026, 11, 17, 3, 30), instances=2)  # 22:30 on the 16th in New York
    assert timeline() == [0, 0, 0, 2]
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        assert timeline() == [0, 0, 2, 0]
        assert set(StatsDay.objects.values_list("time_zone", flat=True)) == {"America/New_York"}
    assert timeline() == [0, 0, 0, 2]


def test_the_nightly_schedule_rolls_up_yesterday():
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    received(timezone.make_aware(datetime.datetime.combine(yesterday, datetime.time(12))), instances=5)
    assert stats_rollup.roll_up_recent() == f"{stats_rollup.NIGHTLY_DAYS} days rolled up"
    assert StatsFigure.objects.get(day=yesterday, dimension="hour").instances == 5
    assert stats_rollup.roll_up_recent() == "0 days rolled up"
