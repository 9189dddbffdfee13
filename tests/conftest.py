"""Shared fixtures: a fresh storage location per test and a live SCP."""

import shutil

import pytest
from django.conf import settings
from django.core.cache import cache

from pacsone import storage
from pacsone.ingest import forget_cached_parents
from tests.helpers import free_port


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """PostgreSQL refuses to drop a database others are connected to: before the test database
    is dropped, end the sessions that threads of the tests (SCP associations) left open."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


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
