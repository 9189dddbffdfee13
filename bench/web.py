"""Web benchmark (`make bench`, after the storage benchmark): server time of the study list,
searches and the REST study list at a large index (default 100,000 studies, 1,000,000
instances of synthetic rows), on SQLite and on MariaDB.

Requests go through Django's test client in this process: the time is the server's (URL
routing, sessions, the visibility rule, the query, the template, the journal entry), without
the network. Each request is repeated (--repeat) after two warm-up runs; the table shows the
median and the 95th percentile. Target (issue 6): p95 <= 200 ms on both databases.

Then the viewer (issue 17): a 1,000-image series scrolled end to end in headless Chromium against
a loopback server, every image fetched, windowed and painted before the next key press; the
browser test tests/browser/test_viewer_scroll_browser.py measures it inside the page and this
script reports its figure. Target: <= 10 s.

    .venv/bin/python bench/web.py [--studies N] [--repeat N] [--skip-mariadb] [--skip-viewer] [--viewer-images N]
"""

import argparse
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
MARIADB_URL = "mysql://root@127.0.0.1:3306/pacsone_webbench"
TARGET_P95_MS = 200
VIEWER_TEST = "tests/browser/test_viewer_scroll_browser.py"
TARGET_SCROLL_SECONDS = 10

# label -> (user, path)
REQUESTS = [
    ("study list, first page (View)", "viewer", "/"),
    ("study list, first page (physician, no View)", "physician", "/"),
    ("patient name prefix SMI*", "viewer", "/?patient_name=SMI*"),
    ("patient ID exact", "viewer", "/?patient_id=SYN00004242"),
    ("accession exact", "viewer", "/?accession_number=ACC000042424"),
    ("study date range, one month", "viewer", "/?study_date=20200101-20200131"),
    ("modality MR + date range", "viewer", "/?modality=MR&study_date=20200101-20200331"),
    ("sorted by patient name, page 20", "viewer", "/?sort=name&page=20"),
    ("REST studies, name prefix", "viewer", "/api/studies/?patient_name=SMI*"),
    ("REST studies (physician)", "physician", "/api/studies/"),
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def inner(backend: str, studies: int, repeat: int) -> dict:
    """Runs in a child process: one backend, a fresh database, then the timings."""
    data_dir = tempfile.mkdtemp(prefix=f"webbench-{backend}-")
    Path(data_dir, "static").mkdir()  # whitenoise warns about a missing static folder otherwise
    os.environ.update(PACS_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="pacsone.settings", PACS_LOG_LEVEL="WARNING")
    if backend == "mariadb":
        os.environ["DATABASE_URL"] = MARIADB_URL
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "-e",
                        "DROP DATABASE IF EXISTS pacsone_webbench; CREATE DATABASE pacsone_webbench CHARACTER SET utf8mb4"],
                       check=True)
    else:
        os.environ.pop("DATABASE_URL", None)
    sys.path[:0] = [str(ROOT), str(BENCH_DIR)]
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from synthetic_index import populate

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    counts = populate(studies, progress=lambda m: print(f"  [{backend}] {m}", file=sys.stderr, flush=True))
    populate_seconds = time.perf_counter() - started
    users = {
        "viewer": User.objects.create_user("viewer", password="x-bench-pass-1", privileges=["view"]),
        # Dr James Smith is the referring physician of about one study in seventeen.
        "physician": User.objects.create_user("physician", password="x-bench-pass-1", first_name="James", last_name="Smith"),
    }
    clients = {}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    results = []
    for label, user, path in REQUESTS:
        client = clients[user]
        for _ in range(2):
            response = client.get(path)
            assert response.status_code == 200, (label, response.status_code)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        results.append({"label": label, "median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95)})
    return {"backend": backend, "counts": counts, "populate_seconds": populate_seconds, "results": results}


def mariadb_reachable() -> bool:
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return False
    return subprocess.run(["mariadb-admin", "-h127.0.0.1", "-uroot", "ping"], capture_output=True).returncode == 0


def viewer_scroll(images: int) -> dict | None:
    """Run the viewer's scroll test (headless Chromium, Django's loopback live server) and read
    the figure it writes; None, with the test's output, if it could not run or failed."""
    out_file = BENCH_DIR / "out" / "viewer-scroll.json"
    out_file.unlink(missing_ok=True)
    env = {**os.environ, "PACS_BENCH_OUT": str(out_file), "PACS_SCROLL_IMAGES": str(images), "PACS_REQUIRE_PEERS": "1"}
    env.pop("DATABASE_URL", None)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", VIEWER_TEST],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if not out_file.exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-2000:])
        return None
    figure = json.loads(out_file.read_text())
    figure["passed"] = run.returncode == 0
    return figure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-mariadb", action="store_true")
    parser.add_argument("--skip-viewer", action="store_true", help="leave out the viewer's 1,000-image scroll")
    parser.add_argument("--viewer-images", type=int, default=1000)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.inner, args.studies, args.repeat)))
        return 0
    backends = ["sqlite"] + ([] if args.skip_mariadb or not mariadb_reachable() else ["mariadb"])
    runs = []
    for backend in backends:
        print(f"== web benchmark on {backend}: building {args.studies:,} studies", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--inner", backend, "--studies", str(args.studies),
                              "--repeat", str(args.repeat)], capture_output=True, text=True)
        sys.stderr.write(out.stderr[-4000:])
        if out.returncode != 0:
            print(f"!!! FAILED on {backend}", file=sys.stderr)
            return 1
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nWeb server time at {args.studies:,} studies (median / p95 ms over {args.repeat} requests; target p95 <= {TARGET_P95_MS} ms)")
    header = "| request | " + " | ".join(f"{r['backend']} median | {r['backend']} p95" for r in runs) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(runs)))
    failed = False
    for i, (label, _, _) in enumerate(REQUESTS):
        cells = []
        for run in runs:
            result = run["results"][i]
            flag = "" if result["p95_ms"] <= TARGET_P95_MS else " (!)"
            failed |= bool(flag)
            cells += [f"{result['median_ms']:.1f}", f"{result['p95_ms']:.1f}{flag}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for run in runs:
        print(f"{run['backend']}: {run['counts']} built in {run['populate_seconds']:.0f} s")
    (BENCH_DIR / "out").mkdir(exist_ok=True)
    (BENCH_DIR / "out" / "web-results.json").write_text(json.dumps(runs, indent=2))
    print("(!) marks a p95 above the target" if failed else "every p95 within the target")
    if args.skip_viewer:
        return 0
    print(f"== viewer: scrolling a {args.viewer_images:,}-image series in headless Chromium", file=sys.stderr, flush=True)
    scroll = viewer_scroll(args.viewer_images)
    if scroll is None:
        print("!!! FAILED: the viewer scroll test did not run (output above)", file=sys.stderr)
        return 1
    flag = "" if scroll["seconds"] <= TARGET_SCROLL_SECONDS * args.viewer_images / 1000 else " (!) above the target"
    print(f"\nViewer: a {scroll['images']:,}-image series scrolled end to end in {scroll['seconds']:.1f} s "
          f"({scroll['ms_per_image']} ms an image; first image {scroll['first_image_seconds']:.2f} s after opening; "
          f"target <= {TARGET_SCROLL_SECONDS} s for 1,000){flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
