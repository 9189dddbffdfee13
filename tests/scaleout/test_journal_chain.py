"""The journal stays one chain when two processes (two nodes) append at once: each append locks
the chain's head row (SELECT ... FOR UPDATE) on PostgreSQL and MariaDB."""

import subprocess
import sys
import textwrap
import time

import pytest

from audit.journal import verify_chain
from audit.models import Entry
from tests.helpers import server_env
from tests.scaleout.cluster import require_shared_database

pytestmark = pytest.mark.django_db(transaction=True)

WRITER = textwrap.dedent("""
    import os, sys, time
    import django
    django.setup()
    from audit.journal import record
    go, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    while not os.path.exists(go):
        time.sleep(0.01)
    for n in range(count):
        record("view", username=name, target=f"{name} {n}")
""")


def test_two_processes_appending_at_once_keep_one_chain(tmp_path):
    require_shared_database()
    from audit.chain import journal_key
    from django.conf import settings

    journal_key()
    go, count = tmp_path / "go", 150
    env = server_env(PACS_JOURNAL_KEY_FILE=str(settings.PACS_JOURNAL_KEY_FILE))
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(go), name, str(count)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name in ("node-a", "node-b")]
    time.sleep(3)  # both have set Django up and wait for the signal
    go.touch()
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    assert all(writer.returncode == 0 for writer in writers), outputs
    for name in ("node-a", "node-b"):
        assert Entry.objects.filter(username=name).count() == count
    # They did interleave: otherwise this would test nothing about concurrency.
    order = list(Entry.objects.filter(username__in=["node-a", "node-b"]).order_by("id").values_list("username", flat=True))
    switches = sum(1 for first, second in zip(order, order[1:]) if first != second)
    assert switches > 2, "the writers ran one after the other"
    report = verify_chain()
    assert report.ok and report.checked == Entry.objects.count(), report
