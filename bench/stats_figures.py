"""Statistics benchmark (`make bench`; not named statistics.py, which would hide the standard
library module of that name from every script in bench/): server time of the statistics figures at a large index
(default 100,000 studies, 1,000,000 instances of synthetic rows), on SQLite, MariaDB and
PostgreSQL.

The synthetic index (bench/synthetic_index.py) is built, then its received times are spread
over the last `--days` days (default 365: the whole index received within the year, the worst
case for "a year by day"). Timed, through Django's test client in this process (URL routing,
session, the queries, the template or JSON): /api/statistics/ for a year by day, by week and by
month, the last 30 days, and the statistics page for a year by day. Target: p95 <= 300 ms. The
first request, which rolls the year's past days up (done nightly in a running archive), is
reported on its own.

    .venv/bin/python bench/stats_figures.py [--studies N] [--days N] [--repeat N] [--backends sqlite,mariadb,postgresql]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATABASES = {
    "sqlite": None,
    "mariadb": "mysql://root@127.0.0.1:3306/pacsone_statsbench",
    "postgresql": "postgres://postgres@127.0.0.1:5432/pacsone_statsbench",
}
TARGET_P95_MS = 300


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def fresh_database(backend: str) -> None:
    if backend == "mariadb":
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "-e", "DROP DATABASE IF EXISTS pacsone_statsbench; "
                        "CREATE DATABASE pacsone_statsbench CHARACTER SET utf8mb4"], check=True)
    elif backend == "postgresql":
        for sql in ("DROP DATABASE IF EXISTS pacsone_statsbench", "CREATE DATABASE pacsone_statsbench"):
            subprocess.run(["psql", "-h127.0.0.1", "-Upostgres", "-qc", sql], check=True)


def spread_received_times(backend: str, first_day: datetime.date, days: int) -> None:
    """Each row's received time: a day of the period and an hour from its id (one UPDATE per table)."""
    from django.db import connection

    start = first_day.isoformat()
    for table, key in (("pacsone_study", "id"), ("pacsone_series", "study_id"), ("pacsone_instance", "series_id / 2")):
        day, hour = f"(({key}) % {days})", "(id % 13 + 7)"
        if backend == "sqlite":
            value = f"datetime('{start}', '+' || {day} || ' days', '+' || {hour} || ' hours')"
        elif backend == "mariadb":
            value = f"TIMESTAMP('{start}') + INTERVAL {day} DAY + INTERVAL {hour} HOUR"
        else:
            value = f"TIMESTAMPTZ '{start} 00:00+00' + ({day}) * INTERVAL '1 day' + ({hour}) * INTERVAL '1 hour'"
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET received_at = {value}")
    if backend == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    elif backend == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def inner(backend: str, studies: int, days: int, repeat: int) -> dict:
    """Runs in a child process: one backend, a fresh database, then the timings."""
    data_dir = tempfile.mkdtemp(prefix=f"statsbench-{backend}-")
    Path(data_dir, "static").mkdir()
    os.environ.update(PACS_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="pacsone.settings", PACS_LOG_LEVEL="WARNING")
    if DATABASES[backend]:
        os.environ["DATABASE_URL"] = DATABASES[backend]
        fresh_database(backend)
    else:
        os.environ.pop("DATABASE_URL", None)
    sys.path[:0] = [str(ROOT), str(BENCH_DIR)]
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from synthetic_index import populate

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    counts = populate(studies, progress=lambda m: print(f"  [{backend}] {m}", file=sys.stderr, flush=True))
    today = timezone.localdate()
    first = today - datetime.timedelta(days=days - 1)
    spread_received_times(backend, first, days)
    build_seconds = time.perf_counter() - started
    year_ago = (today - datetime.timedelta(days=364)).isoformat()
    requests = [
        ("API, a year by day", f"/api/statistics/?from={year_ago}&to={today}&by=day"),
        ("API, a year by week", f"/api/statistics/?from={year_ago}&to={today}&by=week"),
        ("API, a year by month", f"/api/statistics/?from={year_ago}&to={today}&by=month"),
        ("API, last 30 days", "/api/statistics/?preset=30days"),
        ("page, a year by day", f"/statistics/?date_from={year_ago}&date_to={today}&by=day"),
        ("CSV, a year by day", f"/statistics/statistics.csv?date_from={year_ago}&date_to={today}&by=day"),
    ]
    client = Client()
    client.force_login(User.objects.create_user("monitor", password="x-bench-pass-1", privileges=["monitor"]))
    # The first request rolls the year's past days up (pacsone/stats_rollup.py; the nightly
    # schedule does it in a running archive); the timed requests then read the rollup.
    t0 = time.perf_counter()
    assert client.get(requests[0][1]).status_code == 200
    rollup_ms = (time.perf_counter() - t0) * 1000
    print(f"  [{backend}] first request, rolling up the year: {rollup_ms:.0f} ms", file=sys.stderr, flush=True)
    results = []
    for label, path in requests:
        for _ in range(2):
            assert client.get(path).status_code == 200, label
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        results.append({"label": label, "median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95)})
        print(f"  [{backend}] {label}: p95 {results[-1]['p95_ms']:.0f} ms", file=sys.stderr, flush=True)
    body = client.get(requests[0][1]).json()
    connection.close()
    return {"backend": backend, "counts": counts, "build_seconds": build_seconds, "results": results, "rollup_ms": rollup_ms,
            "year_instances": body["statistics"]["totals"]["instances"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="Received times spread over this many days up to today.")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.inner, args.studies, args.days, args.repeat)))
        return 0
    runs = []
    for backend in args.backends.split(","):
        print(f"== statistics benchmark on {backend}: building {args.studies:,} studies", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--inner", backend, "--studies", str(args.studies),
                              "--days", str(args.days), "--repeat", str(args.repeat)], capture_output=True, text=True)
        sys.stderr.write(out.stderr[-4000:])
        if out.returncode != 0:
            print(f"!!! FAILED on {backend}", file=sys.stderr)
            return 1
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nStatistics server time at {args.studies:,} studies received over {args.days} days "
          f"(median / p95 ms over {args.repeat} requests; target p95 <= {TARGET_P95_MS} ms)")
    print("| request | " + " | ".join(f"{r['backend']} median | {r['backend']} p95" for r in runs) + " |")
    print("|" + "---|" * (1 + 2 * len(runs)))
    failed = False
    for i, result in enumerate(runs[0]["results"]):
        cells = []
        for run in runs:
            one = run["results"][i]
            flag = "" if one["p95_ms"] <= TARGET_P95_MS else " (!)"
            failed |= bool(flag)
            cells += [f"{one['median_ms']:.1f}", f"{one['p95_ms']:.1f}{flag}"]
        print(f"| {result['label']} | " + " | ".join(cells) + " |")
    for run in runs:
        print(f"{run['backend']}: {run['counts']['instances']:,} instances, {run['year_instances']:,} in the last year; "
              f"built in {run['build_seconds']:.0f} s; the first request rolled the year up in {run['rollup_ms']:.0f} ms")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
