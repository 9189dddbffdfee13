"""`manage.py routes list | add | remove`, as the issue spells it; each change journaled."""

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import Entry
from pacsone.models import RemoteAE
from routing.models import Job, RoutingRule

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def destinations():
    for title in ("STORESCP", "BACKUP"):
        RemoteAE.objects.create(ae_title=title, host="127.0.0.1", port=104)


def routes(*args) -> str:
    out = StringIO()
    call_command("routes", *args, stdout=out)
    return out.getvalue()


def test_add_by_pattern_with_a_window_lists_and_journals_it():
    out = routes("add", "test-patients", "--match", "PatientID=TEST*", "--to", "STORESCP,BACKUP",
                 "--window", "22:00-06:00", "--auto-purge", "--retries", "5")
    assert out.startswith("added test-patients: PatientID = TEST* -> STORESCP, BACKUP, between 22:00 and 06:00")
    rule = RoutingRule.objects.get(name="test-patients")
    assert (rule.window_from, rule.window_to) == (datetime.time(22), datetime.time(6))
    assert rule.auto_purge and rule.max_attempts == 5
    assert sorted(rule.destinations.values_list("ae_title", flat=True)) == ["BACKUP", "STORESCP"]
    entry = Entry.objects.get(action="configuration", target="routing rule test-patients added")
    assert entry.username == "manage.py routes" and "auto-purge" in entry.detail
    assert "test-patients: PatientID = TEST*" in routes("list")


def test_add_by_source_ae_daily():
    routes("add", "from-ct", "--from-ae", "CT_*", "--to", "STORESCP", "--daily", "02:30")
    rule = RoutingRule.objects.get(name="from-ct")
    assert (rule.source_ae_pattern, rule.schedule, rule.daily_at) == ("CT_*", "daily", datetime.time(2, 30))
    assert rule.max_attempts == 3 and not rule.auto_purge


@pytest.mark.parametrize("args, message", [
    (["--match", "NoSuchKeyword=X", "--to", "STORESCP"], "is not a DICOM attribute keyword"),
    (["--match", "PatientID", "--to", "STORESCP"], "--match takes KEYWORD=PATTERN"),
    (["--from-ae", "CT*", "--to", "NOBODY"], "not a registered remote AE: NOBODY"),
    (["--from-ae", "CT*", "--to", "STORESCP", "--window", "22:00"], "--window takes HH:MM-HH:MM"),
    (["--from-ae", "CT*", "--to", "STORESCP", "--daily", "25:00"], "is not a time as HH:MM"),
    (["--from-ae", "CT*", "--to", "STORESCP", "--retries", "0"], "attempts must be between 1 and 20"),
    (["--from-ae", "*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*", "--to", "STORESCP"], "wildcards"),
])
def test_bad_input_gets_a_clear_error_and_changes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        routes("add", "bad", *args)
    assert not RoutingRule.objects.exists() and not Entry.objects.filter(action="configuration").exists()


def test_remove_cancels_the_rules_unfinished_jobs():
    routes("add", "gone", "--from-ae", "CT*", "--to", "STORESCP")
    rule = RoutingRule.objects.get(name="gone")
    job = Job.objects.create(kind="route", title="t", function="routing.forwarding.route_job", rule=rule)
    assert routes("remove", "gone") == "removed gone; 1 unfinished job cancelled\n"
    job.refresh_from_db()
    assert job.state == "cancelled" and not RoutingRule.objects.exists()
    assert Entry.objects.filter(target="routing rule gone removed").count() == 1
    with pytest.raises(CommandError, match="no routing rule named 'gone'"):
        routes("remove", "gone")
    assert routes("list") == "no routing rules\n"
