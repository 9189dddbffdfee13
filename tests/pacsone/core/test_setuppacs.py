"""`setuppacs` (what `make run` calls first) leaves a ready archive: root, and every schedule."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_setuppacs_creates_root_and_the_schedules_and_is_idempotent(settings):
    settings.PACS_ROOT_PASSWORD = "Chosen-root-pass-1"
    for _ in range(2):
        call_command("setuppacs", stdout=StringIO())
    assert User.objects.get(username="root").check_password("Chosen-root-pass-1")
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {"monthly journal report", "journal idle sessions", "remote-study-sync", "job dispatcher"} <= names, names
    assert Schedule.objects.count() == len(names)
