"""Search limits in the core: wildcard patterns are bounded and matched without runaway
backtracking; database statements of a search are bounded in time (query_limits)."""

import random
import re
import time

import pytest
from django.db import DatabaseError, connection

from pacsone.matching import PatternError, check_pattern, pattern_regex, wildcard_q
from pacsone.models import Study
from pacsone.query_limits import QueryTimeout, _Deadline, time_limited
from tests.people import make_study

REDOS = "*A*A*A*A*A*A*A*B"


def slow_sql() -> str:
    """A statement that runs for many seconds on the test database and answers a number (the
    tests also use it as a subquery of primary keys)."""
    if connection.vendor == "postgresql":
        return "SELECT count(*) FROM pg_sleep(30)"
    if connection.vendor == "mysql":
        return "SELECT BENCHMARK(1000000000, MD5('x'))"
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) SELECT max(x) FROM c"


def slow_scan_sql() -> str:
    """A search-like scan (a regular expression over many generated rows) that runs for many
    seconds: MariaDB stops it with an error, unlike BENCHMARK()."""
    if connection.vendor == "postgresql":
        return "SELECT count(*) FROM generate_series(1, 1000000000) AS s WHERE repeat('A', 64) || s::text ~ '^.*A.*B'"
    if connection.vendor == "mysql":
        return "SELECT count(*) FROM seq_1_to_1000000000 WHERE CONCAT(REPEAT('A', 64), seq) REGEXP '^.*A.*B'"
    return slow_sql()


def reference_match(pattern: str, value: str) -> bool:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(body, value) is not None


def test_it_matches_exactly_like_the_plain_translation():
    generator = random.Random(12)
    for _ in range(20000):
        pattern = "".join(generator.choice("AB*?") for _ in range(generator.randint(1, 7)))
        value = "".join(generator.choice("AB") for _ in range(generator.randint(0, 9)))
        assert (re.search(pattern_regex(pattern), value) is not None) == reference_match(pattern, value), (pattern, value)


def test_it_matches_the_redos_pattern_in_linear_time():
    started = time.monotonic()
    assert re.search(pattern_regex(REDOS), "A" * 64) is None
    assert re.search(pattern_regex(REDOS), "A" * 10000) is None
    assert time.monotonic() - started < 0.5


@pytest.mark.django_db
@pytest.mark.parametrize("pattern,found", [
    ("B?RANGER*", True), ("B?RANGER^FRAN?OIS", True), ("*?RANGER*", True),
    ("B??RANGER*", False),  # `?` is one character, not one byte of `É`
    ("b?ranger*", False),  # case-sensitive as asked
])
def test_a_question_mark_matches_one_non_ascii_character(pattern, found):
    make_study("1.2.826.9.3", "BER1", patient_name="Béranger^François")
    matches = Study.objects.filter(wildcard_q("patient__patient_name_search", pattern)).exists()
    assert matches == found


@pytest.mark.parametrize("pattern,problem", [
    ("A*" * 9, "at most 8 wildcards"),
    ("?" * 9, "at most 8 wildcards"),
    ("*" + "A" * 64 + "*", "at most 64 characters"),
])
def test_it_refuses_patterns_over_the_bounds(pattern, problem):
    with pytest.raises(PatternError, match=problem):
        wildcard_q("patient_id", pattern)


def test_bounds_are_settings_and_runs_of_stars_count_once(settings):
    assert check_pattern("A**B***") == "A*B*"
    settings.PACS_MATCH_MAX_WILDCARDS = 2
    check_pattern("*A*")
    with pytest.raises(PatternError):
        check_pattern("*A*B*")
    assert check_pattern("X" * 200) == "X" * 200  # no wildcard: not a pattern


@pytest.mark.django_db
def test_the_redos_pattern_answers_within_a_bound_on_the_database():
    make_study("1.2.826.9.1", "LONG1", patient_name="A" * 64)
    started = time.monotonic()
    with time_limited():
        found = list(Study.objects.filter(wildcard_q("patient__patient_name_search", REDOS)))
    assert found == []
    assert time.monotonic() - started < 2


@pytest.mark.django_db
@pytest.mark.parametrize("statement", [slow_sql, slow_scan_sql])
def test_a_slow_statement_is_stopped_at_the_bound_and_the_connection_goes_on(statement):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match="longer than 0.2 s"):
        with time_limited(200):
            with connection.cursor() as cursor:
                cursor.execute(statement())
                cursor.fetchall()
    assert time.monotonic() - started < 2
    with connection.cursor() as cursor:  # no bound left behind
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_statement_that_comes_back_after_its_deadline_without_an_error_is_refused():
    # What MariaDB does with BENCHMARK() at max_statement_time: the statement ends, no error.
    deadline = _Deadline(100)
    with pytest.raises(DatabaseError):
        deadline.wrapper(lambda *args: time.sleep(0.15), "SELECT BENCHMARK(1000000000, MD5('x'))", None, False, {})
    assert deadline.passed
    deadline = _Deadline(1000)
    assert deadline.wrapper(lambda *args: "rows", "SELECT 1", None, False, {}) == "rows"
    assert not deadline.passed


@pytest.mark.django_db
def test_the_bound_is_per_statement():
    make_study("1.2.826.9.2", "FAST1")
    with time_limited(300):
        for _ in range(3):
            time.sleep(0.15)  # more than the bound in all, but each statement is quick
            assert Study.objects.count() == 1
