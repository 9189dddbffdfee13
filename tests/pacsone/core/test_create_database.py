"""setuppacs creates the server database named in DATABASE_URL when it is missing (MariaDB/MySQL
in utf8mb4, PostgreSQL in UTF-8 with the C collation), and leaves an existing one alone."""

import pytest
from django.db import connection

from pacsone.management.commands.setuppacs import create_database_if_missing

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor == 'sqlite'", reason="SQLite creates its file by itself"),
]


def _database_settings(name: str) -> tuple[str, str] | None:
    """(encoding, collation) of the database `name` on the server; None if it does not exist."""
    with connection._nodb_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = %s",
                           [name])
        else:
            cursor.execute("SELECT default_character_set_name, default_collation_name "
                           "FROM information_schema.schemata WHERE schema_name = %s", [name])
        row = cursor.fetchone()
    return tuple(row) if row else None


def _drop(name: str) -> None:
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)}")


def test_it_creates_the_missing_database_once(monkeypatch):
    name = connection.settings_dict["NAME"] + "_made"
    _drop(name)
    monkeypatch.setitem(connection.settings_dict, "NAME", name)
    try:
        create_database_if_missing()
        create_database_if_missing()  # already there: nothing to do, no error
        encoding, collation = _database_settings(name)
    finally:
        monkeypatch.undo()
        _drop(name)
    if connection.vendor == "postgresql":
        assert (encoding, collation) == ("UTF8", "C")
    else:
        assert encoding == "utf8mb4" and collation.startswith("utf8mb4_")
