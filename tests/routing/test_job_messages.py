"""A failed job's message never shows a server path (the log keeps the whole exception)."""

import pytest

from routing.jobs import start_job
from routing.models import Job
from tests.people import make_user

pytestmark = pytest.mark.django_db


def fails_reading(progress, path):
    open(path)


def test_a_failed_job_does_not_show_the_server_path(tmp_path):
    missing = tmp_path / "secret-folder" / "file.dcm"
    job = start_job(Job.Kind.IMPORT, "test", make_user("u"), "tests.routing.test_job_messages.fails_reading", str(missing))
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert job.message == "failed: No such file or directory"
