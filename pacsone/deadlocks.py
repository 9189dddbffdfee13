"""Deadlocks on MariaDB and PostgreSQL: the database rolls its victim's transaction back whole,
so the work is retried from where that transaction began (never from inside a caller's
transaction: the caller must retry then)."""

import logging
import time
from typing import Callable, TypeVar

from django.db import OperationalError, connection

log = logging.getLogger(__name__)

RETRIES = 5
T = TypeVar("T")


def is_deadlock(exc: OperationalError) -> bool:
    """MariaDB's ER_LOCK_DEADLOCK (1213), PostgreSQL's deadlock_detected (40P01)."""
    cause = exc.__cause__
    code = getattr(cause, "args", (None,))[0] if cause is not None else None
    return code == 1213 or getattr(cause, "sqlstate", None) == "40P01" or getattr(cause, "pgcode", None) == "40P01"


def may_retry(exc: OperationalError, attempt: int) -> bool:
    """Whether `exc` on attempt `attempt` (0 first) is a deadlock to retry; waits a little if so."""
    if not is_deadlock(exc) or connection.in_atomic_block or attempt >= RETRIES:
        return False
    time.sleep(0.001 * (attempt + 1))
    return True


def retried_on_deadlock(work: Callable[[], T], what: str) -> T:
    """`work()`, run again when the database chose it as a deadlock's victim."""
    attempt = 0
    while True:
        try:
            return work()
        except OperationalError as exc:
            if not may_retry(exc, attempt):
                raise
            log.info("deadlock, retrying %s attempt=%d error=%s", what, attempt + 1, exc)
        attempt += 1
