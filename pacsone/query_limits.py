"""A time bound on the database statements of a search, on SQLite, MariaDB/MySQL and PostgreSQL.

`with time_limited():` gives every statement run inside it at most PACS_QUERY_TIMEOUT_MS; a
slower statement is stopped by the database and surfaces as QueryTimeout, which each interface
turns into a clear refusal (page message, API 503, C-FIND failure with an Error Comment).

- SQLite: a progress handler, called every few thousand virtual-machine steps, interrupts the
  statement once its deadline has passed (the deadline restarts with each statement).
- PostgreSQL: `statement_timeout` for the session, restored on the way out; inside a
  transaction in a savepoint, since a stopped statement aborts the whole transaction there.
- MariaDB: `max_statement_time` (seconds); MySQL: `max_execution_time` (ms, SELECT only).

A statement that comes back after its deadline is refused as well, even without an error:
MariaDB stops some statements at `max_statement_time` without telling (`BENCHMARK()` returns 0,
a function that checks for the stop returns what it has), so their answer cannot be trusted.
Scans (the searches' own statements) do fail there with error 1969, as on the other databases.
"""

import contextlib
import time

from django.conf import settings
from django.db import DatabaseError, connection

# SQLite calls the progress handler every this many virtual-machine instructions.
SQLITE_PROGRESS_STEPS = 10_000


class QueryTimeout(Exception):
    """A statement ran past the search time bound."""

    def __init__(self, limit_ms: int):
        super().__init__(f"the search took longer than {limit_ms / 1000:g} s; narrow it")
        self.limit_ms = limit_ms


class _Deadline:
    """The running statement's deadline, restarted by the execute wrapper for each statement."""

    def __init__(self, limit_ms: int):
        self.seconds = limit_ms / 1000
        self.at = time.monotonic() + self.seconds
        self.passed = False

    def restart(self) -> None:
        self.at = time.monotonic() + self.seconds

    def check(self) -> bool:
        """For SQLite's progress handler: nonzero interrupts the statement."""
        if time.monotonic() > self.at:
            self.passed = True
            return True
        return False

    def wrapper(self, execute, sql, params, many, context):
        self.restart()
        try:
            result = execute(sql, params, many, context)
        except DatabaseError:
            if time.monotonic() >= self.at:
                self.passed = True
            raise
        if time.monotonic() >= self.at:  # stopped without an error (MariaDB), or cut short
            self.passed = True
            raise StatementPastDeadline(sql)
        return result


class StatementPastDeadline(DatabaseError):
    """A statement came back after its deadline: the database may have cut it short silently."""


def _session_timeout_sql(limit_ms: int) -> tuple[str, str] | None:
    """(set, reset) statements for the server databases; None for SQLite."""
    if connection.vendor == "postgresql":
        return f"SET statement_timeout = {int(limit_ms)}", "SET statement_timeout TO DEFAULT"
    if connection.vendor == "mysql":
        if connection.mysql_is_mariadb:
            return (f"SET SESSION max_statement_time = {limit_ms / 1000:.3f}",
                    "SET SESSION max_statement_time = DEFAULT")
        return f"SET SESSION max_execution_time = {int(limit_ms)}", "SET SESSION max_execution_time = DEFAULT"
    return None


@contextlib.contextmanager
def time_limited(limit_ms: int | None = None):
    """Every statement inside takes at most `limit_ms` (default PACS_QUERY_TIMEOUT_MS);
    QueryTimeout when one is stopped."""
    limit_ms = limit_ms or settings.PACS_QUERY_TIMEOUT_MS
    deadline = _Deadline(limit_ms)
    connection.ensure_connection()
    session_sql = _session_timeout_sql(limit_ms)
    # PostgreSQL aborts the whole transaction on a failed (stopped) statement: inside one, the
    # bound runs in a savepoint, whose rollback leaves the caller's transaction usable and
    # undoes the SET. (Outside a transaction each statement is its own.)
    savepoint = connection.savepoint() if connection.vendor == "postgresql" and connection.in_atomic_block else None
    if session_sql is None:
        connection.connection.set_progress_handler(deadline.check, SQLITE_PROGRESS_STEPS)
    else:
        with connection.cursor() as cursor:
            cursor.execute(session_sql[0])
    try:
        with connection.execute_wrapper(deadline.wrapper):
            yield
    except BaseException as error:
        if savepoint is not None:
            connection.savepoint_rollback(savepoint)
            savepoint = session_sql = None  # the rollback undid the SET as well
        if isinstance(error, DatabaseError) and deadline.passed:
            raise QueryTimeout(limit_ms) from error
        raise
    finally:
        _restore(session_sql)
        if savepoint is not None:
            connection.savepoint_commit(savepoint)


def _restore(session_sql: tuple[str, str] | None) -> None:
    if connection.connection is None:  # closed meanwhile (a failed connection is dropped)
        return
    if session_sql is None:
        if connection.vendor == "sqlite":
            connection.connection.set_progress_handler(None, 0)
        return
    if connection.needs_rollback:  # the rollback of the surrounding transaction undoes the SET
        return
    with connection.cursor() as cursor:
        cursor.execute(session_sql[1])
