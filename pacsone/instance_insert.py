"""The INSERT of a new Instance row on the ingest's fast path, without the ORM's per-row machinery.

`Instance.objects.create()` builds a model object, runs save() with its signals and compiles
the INSERT afresh each time: ~0.5 ms of CPU per stored image, a tenth of what a small image
costs in all. Here the statement is built once from the model's fields and each row's values
are prepared by the same field methods the ORM uses (`get_db_prep_save`), so the row is the
one `create()` would write. Instance has no save() override and no signal receivers; should it
get one, the ingest must go back to `create()`.

`insert_counted()` is the whole fast-path transaction (the counters' two UPDATEs and the INSERT,
study_counts.py) sent through the driver's own cursor: Django's cursor wrapper, its placeholder
translation and `atomic()`'s autocommit switching cost more Python per instance than the three
statements themselves (docs/decisions/ingest-cpu-per-instance.md).
"""

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone

from .models import Instance, Series, Study

_statement: tuple[str, str, list] | None = None  # (database vendor, SQL, fields in column order)
# Fields whose value the ingest passes as the database takes it (a str, an int or None):
# get_db_prep_save() would return it unchanged.
_PLAIN_FIELDS = (models.CharField, models.IntegerField, models.BigIntegerField, models.ForeignKey)


def _prepared(connection) -> tuple[str, list]:
    global _statement
    if _statement is None or _statement[0] != connection.vendor:
        quote = connection.ops.quote_name
        fields = [field for field in Instance._meta.concrete_fields if not field.primary_key]
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(Instance._meta.db_table)} ({columns}) VALUES ({placeholders})"
        if connection.vendor == "postgresql":  # psycopg has no lastrowid for a serial key
            sql += f" RETURNING {quote(Instance._meta.pk.column)}"
        _statement = (connection.vendor, sql, fields)
    return _statement[1], _statement[2]


def _params(connection, fields: list, values: dict) -> list:
    values = {**values, "received_at": timezone.now()}
    params = []
    for field in fields:
        if field.attname in values:
            value = values[field.attname]
        else:
            value = values.get(field.name, field.get_default())
        if field.attname != field.name and hasattr(value, "pk"):  # a foreign key given as its object
            value = value.pk
        if not (isinstance(field, _PLAIN_FIELDS) and (value is None or type(value) in (str, int))):
            value = field.get_db_prep_save(value, connection)
        params.append(value)
    return params


def insert_instance(values: dict) -> int:
    """INSERT one Instance row; its primary key. `values` by field name (foreign keys as `<name>_id`
    or as objects); a field left out gets its default, `received_at` is now (auto_now_add)."""
    # The thread's connection itself: `django.db.connection` is a proxy that looks it up in a
    # thread-critical local on every attribute, and each field's get_db_prep_save asks it again.
    connection = connections[DEFAULT_DB_ALIAS]
    sql, fields = _prepared(connection)
    params = _params(connection, fields, values)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            return cursor.fetchone()[0]
        return cursor.lastrowid


class _FastPath:
    """The fast path's statements for one database vendor, in the driver's own placeholders."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        insert, self.fields = _prepared(connection)
        study, series = quote(Study._meta.db_table), quote(Series._meta.db_table)
        count_study = (f"UPDATE {study} SET number_of_instances = number_of_instances + 1, "
                       f"size_bytes = size_bytes + %s WHERE id = %s")
        count_series = f"UPDATE {series} SET number_of_instances = number_of_instances + 1 WHERE id = %s"
        if connection.vendor == "sqlite":  # sqlite3 takes "?" (Django's wrapper translates "%s")
            insert, count_study, count_series = (s.replace("%s", "?") for s in (insert, count_study, count_series))
        self.insert, self.count_study, self.count_series = insert, count_study, count_series
        mode = getattr(connection, "transaction_mode", None)  # SQLite: IMMEDIATE in our settings
        self.begin = f"BEGIN {mode}" if mode else "BEGIN"
        self.returning = connection.vendor == "postgresql"


_fast_paths: dict[str, _FastPath] = {}


def insert_counted(study_pk: int, series_pk: int, values: dict) -> int:
    """In one transaction of its own: count an instance of `values["file_size"]` bytes into its
    study and series (study_counts.count_instance: the study's row first, then the series') and
    INSERT its row; its primary key. Outside any transaction of the caller only (the ingest's
    fast path). A database error rolls the transaction back and is raised as Django's."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:
        raise RuntimeError("insert_counted() opens its own transaction: not inside another one")
    statements = _fast_paths.get(connection.vendor)
    if statements is None:
        statements = _fast_paths[connection.vendor] = _FastPath(connection)
    params = _params(connection, statements.fields, values)
    connection.ensure_connection()
    with connection.wrap_database_errors:  # driver errors as Django's IntegrityError, OperationalError
        cursor = connection.connection.cursor()
        try:
            cursor.execute(statements.begin)
            try:
                cursor.execute(statements.count_study, (values["file_size"], study_pk))
                cursor.execute(statements.count_series, (series_pk,))
                cursor.execute(statements.insert, params)
                pk = cursor.fetchone()[0] if statements.returning else cursor.lastrowid
                cursor.execute("COMMIT")
            except BaseException:
                _rollback_quietly(cursor)
                raise
        finally:
            cursor.close()
    return pk


def _rollback_quietly(cursor) -> None:
    try:
        cursor.execute("ROLLBACK")
    except Exception:  # the connection broke: the server rolls back; the first error is the one to raise
        pass
