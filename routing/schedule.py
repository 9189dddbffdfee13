"""When a routing rule sends: immediately (once the study is quiet), inside a [from, to] window
of local time (across midnight when to < from), or daily at a time."""

import datetime

from django.conf import settings
from django.utils import timezone

from .models import RoutingRule


def in_window(start: datetime.time, end: datetime.time, moment: datetime.datetime) -> bool:
    now = timezone.localtime(moment).time()
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # across midnight


def next_at(time_of_day: datetime.time, moment: datetime.datetime) -> datetime.datetime:
    """The first local `time_of_day` at or after `moment`."""
    local = timezone.localtime(moment)
    candidate = local.replace(hour=time_of_day.hour, minute=time_of_day.minute, second=0, microsecond=0)
    if candidate < local:
        candidate = (local + datetime.timedelta(days=1)).replace(
            hour=time_of_day.hour, minute=time_of_day.minute, second=0, microsecond=0)
    return timezone.make_aware(candidate.replace(tzinfo=None), timezone.get_current_timezone())


def window_open_at(rule: RoutingRule, moment: datetime.datetime) -> datetime.datetime:
    """`moment` when the rule may send then, else when it may next."""
    if rule.schedule != RoutingRule.Schedule.WINDOW or in_window(rule.window_from, rule.window_to, moment):
        return moment
    return next_at(rule.window_from, moment)


def first_send(rule: RoutingRule, now: datetime.datetime) -> tuple[datetime.datetime, bool]:
    """(when a study that just received instances is sent, whether that is a wait for the
    rule's window or time rather than for the study to be quiet)."""
    ready = now if rule.each_instance else now + datetime.timedelta(seconds=settings.PACS_ROUTING_QUIET_SECONDS)
    if rule.schedule == RoutingRule.Schedule.DAILY:
        return max(next_at(rule.daily_at, now), ready), True
    if rule.schedule == RoutingRule.Schedule.WINDOW:
        opens = window_open_at(rule, ready)
        return opens, opens > ready
    return ready, False
