"""The time the job layer and the routing schedules go by: one function, so that a test can
freeze it (monkeypatch `routing.clock.now`)."""

import datetime

from django.utils import timezone


def now() -> datetime.datetime:
    return timezone.now()
