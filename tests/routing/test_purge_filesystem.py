"""Purge watermarks on a small real filesystem: a 2 MiB tmpfs mounted for the test, filled with
studies above its high mark; the purge measures it with statvfs, removes exactly what its dry
run listed, and leaves it below its low mark. Skipped, with the reason, where this machine cannot
mount one (mounting needs root, or CAP_SYS_ADMIN)."""

import os
import shutil
import subprocess

import pytest
from pydicom.uid import generate_uid

from pacsone import storage
from pacsone.models import StorageLocation, Study
from pacsone.storage_admin import do_add_location, do_set_current
from routing import purge
from tests.helpers import ingest_instance, make_file

pytestmark = pytest.mark.django_db

SIZE = 2 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a size-limited tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_small_disk_is_purged_below_its_low_mark_exactly_as_its_dry_run_said(tmp_path, small_disk):
    location = do_add_location("small", str(small_disk / "archive"), 60, 40, username="test")
    do_set_current(location, username="test")
    studies = []
    while storage.usage(location).percent_used <= 70:  # ~130 KB images until well above the high mark
        uid = generate_uid()
        ingest_instance(make_file(tmp_path / "in", f"{uid}.dcm", study_uid=uid, rows=256))
        studies.append(Study.objects.get(study_instance_uid=uid).pk)
    before = storage.usage(location)
    assert before.total_bytes <= SIZE and before.percent_used > 60

    dry_run = purge.plan(location)
    assert dry_run.studies and dry_run.reaches_low_mark
    assert [p.study_pk for p in dry_run.studies] == studies[:len(dry_run.studies)]  # oldest first

    result = purge.purge(StorageLocation.objects.get(pk=location.pk))

    assert [p.study_pk for p in result.purged] == [p.study_pk for p in dry_run.studies]
    after = storage.usage(location)
    assert after.percent_used < 40, f"{before.percent_used:.1f}% -> {after.percent_used:.1f}%"
    assert result.usage_after.used_bytes == after.used_bytes
    assert list(Study.objects.order_by("pk").values_list("pk", flat=True)) == studies[len(dry_run.studies):]
    assert purge.plan(location).studies == []  # below the high mark now: nothing more
