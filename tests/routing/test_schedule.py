"""Routing schedules: windows (across midnight too), daily times, and the quiet time, in the
archive's local time zone."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from routing.models import RoutingRule
from routing.schedule import first_send, in_window, next_at

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(hour, minute=0, day=30, month=11):
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def paris(settings):
    settings.TIME_ZONE = "Europe/Paris"
    settings.PACS_ROUTING_QUIET_SECONDS = 30
    with timezone.override(PARIS):
        yield


@pytest.mark.parametrize("start, end, moment, inside", [
    ((8, 0), (18, 0), at(8), True), ((8, 0), (18, 0), at(17, 59), True), ((8, 0), (18, 0), at(18), False),
    ((22, 0), (6, 0), at(23), True), ((22, 0), (6, 0), at(2), True), ((22, 0), (6, 0), at(6), False),
    ((22, 0), (6, 0), at(12), False),
])
def test_windows_include_their_start_and_exclude_their_end(start, end, moment, inside):
    assert in_window(datetime.time(*start), datetime.time(*end), moment.astimezone(datetime.timezone.utc)) is inside


def test_next_at_is_today_or_tomorrow_in_local_time():
    assert next_at(datetime.time(22, 0), at(12)) == at(22)
    assert next_at(datetime.time(2, 0), at(12)) == at(2, day=1, month=12)
    assert next_at(datetime.time(12, 0), at(12)) == at(12)


def test_first_send_waits_for_quiet_then_for_the_window_or_the_daily_time():
    now = at(12).astimezone(datetime.timezone.utc)
    quiet = datetime.timedelta(seconds=30)
    assert first_send(RoutingRule(), now) == (now + quiet, False)
    assert first_send(RoutingRule(each_instance=True), now) == (now, False)
    window = RoutingRule(schedule="window", window_from=datetime.time(22), window_to=datetime.time(6))
    assert first_send(window, now) == (at(22), True)
    assert first_send(window, at(23).astimezone(datetime.timezone.utc)) == (at(23) + quiet, False)
    daily = RoutingRule(schedule="daily", daily_at=datetime.time(2, 30))
    assert first_send(daily, now) == (at(2, 30, day=1, month=12), True)
