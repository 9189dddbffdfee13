"""The statistics of a period, from the index: per day, week and month in the server's time
zone, per modality, AE, institution and physician, busiest hours, storage and failures."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from audit.journal import Action, Outcome, record
from pacsone.stats import period_figures
from pacsone.stats_days import Period, period_problems
from pacsone.stats_periods import PeriodForm, report_period
from routing.models import Job
from tests.stats_data import at, received

pytestmark = pytest.mark.django_db


def test_a_periods_figures_by_day_and_by_breakdown():
    received(at(2026, 11, 17, 8, 15), modality="CT", ae="CT_ROOM1", instances=3, size=1000)
    received(at(2026, 11, 17, 9, 30), modality="MR", ae="MR_ROOM2", institution="CITY CLINIC", referring="DOE^JOHN",
             instances=2, size=2000)
    received(at(2026, 11, 15, 8, 45), modality="CT", ae="CT_ROOM1", instances=4, size=500)
    received(at(2026, 10, 1), modality="US", instances=1)  # outside the period
    Job.objects.create(kind=Job.Kind.FORWARD, title="to PEER", state=Job.State.FAILED, finished_at=at(2026, 11, 16))
    Job.objects.create(kind=Job.Kind.FORWARD, title="to PEER", state=Job.State.FAILED, finished_at=at(2026, 9, 16))
    entry = record(Action.STORE, ae_title="ROGUE", outcome=Outcome.DENIED, detail="refused (0x0124)")
    figures = period_figures(Period(datetime.date(2026, 11, 14), datetime.date(2026, 11, 17), "day"))
    by_day = {row["period"]: row for row in figures["timeline"]}
    assert list(by_day) == [datetime.date(2026, 11, d) for d in (14, 15, 16, 17)]
    assert (by_day[datetime.date(2026, 11, 17)]["studies"], by_day[datetime.date(2026, 11, 17)]["instances"],
            by_day[datetime.date(2026, 11, 17)]["bytes"]) == (2, 5, 7000)
    assert by_day[datetime.date(2026, 11, 16)] == {"period": datetime.date(2026, 11, 16), "studies": 0, "series": 0,
                                                   "instances": 0, "bytes": 0}
    assert figures["totals"] == {"studies": 3, "series": 3, "instances": 9, "bytes": 9000}
    assert figures["by_modality"] == [{"label": "CT", "series": 2, "instances": 7}, {"label": "MR", "series": 1, "instances": 2}]
    assert figures["by_source_ae"] == [{"label": "CT_ROOM1", "studies": 2, "instances": 7, "bytes": 5000},
                                       {"label": "MR_ROOM2", "studies": 1, "instances": 2, "bytes": 4000}]
    assert figures["by_institution"][0] == {"label": "GENERAL HOSPITAL", "studies": 2, "instances": 7, "bytes": 5000}
    assert {row["label"] for row in figures["by_referring_physician"]} == {"SMITH^JANE", "DOE^JOHN"}
    hours = {row["hour"]: row["instances"] for row in figures["busiest_hours"]}
    assert len(hours) == 24 and (hours[8], hours[9], hours[12]) == (7, 2, 0)
    assert figures["failures"]["failed_jobs"] == [{"kind": "Forward", "count": 1}] and figures["failed_jobs"] == 1
    assert figures["refused_stores"] == 0  # refused today, outside the period
    today = timezone.localdate(entry.timestamp)
    refused = period_figures(Period(today, today, "day"))["failures"]["refused_stores"]
    assert refused == [{"label": "ROGUE", "count": 1}]
    [location] = figures["storage"]
    assert location["indexed_bytes"] == 10000 and location["free_bytes"] > 0 and not location["problem"]


def test_days_are_cut_in_the_servers_time_zone():
    received(at(2026, 11, 17, 3, 30), instances=2)  # 03:30 UTC is 22:30 the day before in New York
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        figures = period_figures(Period(datetime.date(2026, 11, 16), datetime.date(2026, 11, 17), "day"))
    assert [row["instances"] for row in figures["timeline"]] == [2, 0]
    assert [row["hour"] for row in figures["busiest_hours"] if row["instances"]] == [22]


def test_a_zone_half_an_hour_off_utc_is_cut_at_its_own_midnight():
    received(at(2026, 11, 16, 18, 20), instances=2)  # 23:50 in Kolkata (UTC+5:30)
    received(at(2026, 11, 16, 18, 40), instances=3)  # 00:10 the next day there
    with timezone.override(zoneinfo.ZoneInfo("Asia/Kolkata")):
        figures = period_figures(Period(datetime.date(2026, 11, 16), datetime.date(2026, 11, 17), "day"))
    assert [row["instances"] for row in figures["timeline"]] == [2, 3]
    assert {row["hour"]: row["instances"] for row in figures["busiest_hours"] if row["instances"]} == {23: 2, 0: 3}


def test_days_follow_summer_time_changes_within_the_period():
    received(at(2026, 10, 24, 22, 30), instances=1)  # 00:30 on the 25th in Berlin (summer time, UTC+2)
    received(at(2026, 10, 25, 22, 30), instances=2)  # 23:30 on the 25th (winter time since 03:00, UTC+1)
    received(at(2026, 10, 25, 23, 30), instances=4)  # 00:30 on the 26th
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        figures = period_figures(Period(datetime.date(2026, 10, 24), datetime.date(2026, 10, 26), "day"))
    assert [row["instances"] for row in figures["timeline"]] == [0, 3, 4]
    assert {row["hour"]: row["instances"] for row in figures["busiest_hours"] if row["instances"]} == {0: 5, 23: 2}


def test_weeks_start_on_monday_and_months_on_the_first():
    received(at(2026, 11, 16), instances=1)  # a Monday
    received(at(2026, 11, 22), instances=2)  # the Sunday of the same week
    received(at(2026, 11, 23), instances=4)  # the next Monday
    received(at(2026, 12, 1), instances=8)
    weeks = period_figures(Period(datetime.date(2026, 11, 18), datetime.date(2026, 12, 1), "week"))
    assert [(row["period"], row["instances"]) for row in weeks["timeline"]] == [
        (datetime.date(2026, 11, 16), 2), (datetime.date(2026, 11, 23), 4), (datetime.date(2026, 11, 30), 8)]
    months = period_figures(Period(datetime.date(2026, 11, 1), datetime.date(2026, 12, 31), "month"))
    assert [(row["period"], row["instances"]) for row in months["timeline"]] == [
        (datetime.date(2026, 11, 1), 7), (datetime.date(2026, 12, 1), 8)]


def test_a_requested_period_is_checked_and_bounded():
    assert period_problems(datetime.date(2026, 1, 2), datetime.date(2026, 1, 1), "day") == {"to": "The end is before the start."}
    assert "731" in period_problems(datetime.date(2020, 1, 1), datetime.date(2026, 1, 1), "day")["to"]
    assert period_problems(datetime.date(2020, 1, 1), datetime.date(2026, 1, 1), "month") == {}
    form = PeriodForm.from_query({"from": "20261101", "to": "2026-11-30", "by": "week"})
    assert form.is_valid() and form.period == Period(datetime.date(2026, 11, 1), datetime.date(2026, 11, 30), "week")
    bad = PeriodForm.from_query({"from": "yesterday", "by": "fortnight"})
    assert not bad.is_valid() and set(bad.problems()) == {"from", "to", "by"}
    missing = PeriodForm.from_query({"from": "2026-11-01"})
    assert not missing.is_valid() and "last day" in missing.problems()["to"]


def test_report_periods_for_a_given_day():
    wednesday = datetime.date(2026, 11, 18)
    assert report_period("daily", wednesday) == Period(datetime.date(2026, 11, 17), datetime.date(2026, 11, 17))
    assert report_period("weekly", wednesday) == Period(datetime.date(2026, 11, 9), datetime.date(2026, 11, 15))
    assert report_period("monthly", wednesday) == Period(datetime.date(2026, 10, 1), datetime.date(2026, 10, 31))
    assert report_period("monthly", datetime.date(2027, 1, 1)) == Period(datetime.date(2026, 12, 1), datetime.date(2026, 12, 31))
