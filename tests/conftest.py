"""Shared fixtures: a fresh storage location per test and a live SCP."""

import shutil

import pytest
from django.conf import settings
from django.core.cache import cache

from pacsone import storage
from pacsone.ingest import forget_cached_parents
from tests.helpers import free_port


@pytest.fixture(autouse=True)
def _fresh_storage():
    """Each test starts with an empty database, so it starts with empty storage too."""
    storage.forget_default_location()
    forget_cached_parents()
    cache.clear()  # e.g. the study list's cached archive figures
    shutil.rmtree(settings.STORAGE_DIR, ignore_errors=True)
    yield
    storage.forget_default_location()


@pytest.fixture
def scp(transactional_db):
    """A live SCP in this process on a free port: (ae_title, port)."""
    from pacsone.dicom.scp import start_server, stop_server

    port = free_port()
    server = start_server("PACSONE", port, host="127.0.0.1")
    yield "PACSONE", port
    stop_server(server, grace_seconds=2)


def known_mariadb_defect(reason: str):
    """A defect seen on MariaDB only and not yet fixed (named in the open issue): the test runs
    there and is reported as XFAIL/XPASS, never silently skipped."""
    from django.conf import settings as django_settings

    on_mariadb = django_settings.DATABASES["default"]["ENGINE"].endswith("mysql")
    return pytest.mark.xfail(on_mariadb, reason=f"MariaDB: {reason}", strict=False)
