"""CPU of our receive-and-ingest path per instance, in-process (`bench/ingest_cpu.py mr`).

Feeds a data set of bench/out/data through what an association thread does for each C-STORE
(ReceivedFile written in 16 kB fragments, its early header, `ingest_file` with the file's sync,
the index transaction and the WAL's sync) on one thread, against a fresh archive (SQLite, or
MariaDB/PostgreSQL with --database-url), and prints the thread's CPU time per instance, in
total and split into receiving and ingesting. No sockets, no peer, no other process: the
figure moves far less than a whole server's when other work shares the machine, so this is
what a change to the ingest path is judged by first (cpu_profile.py then checks the server).
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRAGMENT = 16 * 1024 - 6  # what storescu puts in a P-DATA-TF of 16 kB


def load(folder: Path) -> list[tuple[str, str, str, bytes]]:
    """(SOP class, SOP instance, transfer syntax, data set bytes) of each file, meta stripped."""
    from pydicom import dcmread

    items = []
    for path in sorted(folder.rglob("*.dcm")):
        meta = dcmread(path, stop_before_pixels=True).file_meta
        raw = path.read_bytes()
        start = 132 + 12 + meta.FileMetaInformationGroupLength
        items.append((meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID,
                      raw[start:]))
    return items


WARM_UP = 20  # instances stored first, not measured: imports, caches, each study's first series


def one_round(items, temp_folder: Path) -> tuple[float, float, float, float]:
    """Thread CPU seconds for all items (receiving, ingesting, of both the part spent in the
    kernel) and the median instance's."""
    from pacsone.dicom.receiving import ReceivedFile
    from pacsone.ingest import Origin, Outcome, PostIngestBatch, ingest_file

    origin = Origin("dicom", ae_title="BENCH", address="127.0.0.1")
    batch = PostIngestBatch()
    receiving = ingesting = 0.0
    per_instance = []
    system_before = resource.getrusage(resource.RUSAGE_THREAD).ru_stime
    for sop_class, sop_instance, syntax, data in items:
        t0 = time.thread_time()
        received = ReceivedFile(temp_folder, sop_class, sop_instance, syntax, "BENCH")
        for at in range(0, len(data), FRAGMENT):
            received.write(data[at:at + FRAGMENT])
        received.finish()
        t1 = time.thread_time()
        try:
            result = ingest_file(Path(received.name), origin, adopt=True, batch=batch, received=received,
                                 header=received.header, header_json=received.header_json)
        finally:
            received.close()
        t2 = time.thread_time()
        if result.outcome not in (Outcome.STORED, Outcome.IGNORED):
            sys.exit(f"ingest failed: {result}")
        receiving += t1 - t0
        ingesting += t2 - t1
        per_instance.append(t2 - t0)
    # The median instance: on a shared machine a few instances take far longer (another process
    # ran on the core; in a VM, the host preempted it), which the sum counts and the median does not.
    return (receiving, ingesting, resource.getrusage(resource.RUSAGE_THREAD).ru_stime - system_before,
            statistics.median(per_instance))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["mr", "ct"])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the data set (each into a fresh archive)")
    parser.add_argument("--database-url", default="", help="e.g. mysql://root@127.0.0.1:3306/pacsone_bench_x"
                                                           " (dropped and created)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last round here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO))
    import synth
    from cpu_profile import SETS

    dataset = synth.ensure(SETS[args.dataset], REPO / "bench" / "out" / "data")
    items = load(dataset.folder)
    results = []
    for round_number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="ingest-cpu-") as data_dir:
            results.append(_run_round(items, Path(data_dir), args, round_number == args.rounds - 1))
    totals = [r + i for r, i, _, _ in results]
    per = 1000 / (len(items) - WARM_UP)
    print(f"{args.dataset} {len(items) - WARM_UP} instances, {args.database_url.split(':')[0] or 'sqlite'}: thread CPU ms per instance"
          f" {' '.join(f'{t * per:.3f}' for t in totals)} (median {statistics.median(totals) * per:.3f});"
          f" receive {statistics.median(r for r, _, _, _ in results) * per:.3f},"
          f" ingest {statistics.median(i for _, i, _, _ in results) * per:.3f},"
          f" system {statistics.median(s for _, _, s, _ in results) * per:.3f};"
          f" median instance {' '.join(f'{m * 1000:.3f}' for _, _, _, m in results)}")


def _run_round(items, data_dir: Path, args, profile_this: bool) -> tuple[float, float, float, float]:
    """One pass in a child process: Django is set up once per archive."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(items, str(data_dir), args.database_url,
                                                 str(args.profile) if profile_this and args.profile else "", queue))
    child.start()
    result = queue.get()
    child.join()
    if isinstance(result, str):
        sys.exit(result)
    return result


def _child(items, data_dir: str, database_url: str, profile_path: str, queue) -> None:
    try:
        os.environ.update(PACS_DATA_DIR=data_dir, PACS_TASKS_SYNC="false", PACS_AE_TITLE="PACSONE",
                          PACS_ROOT_PASSWORD="bench-root-password-not-used", DJANGO_SETTINGS_MODULE="pacsone.settings")
        os.environ.pop("DATABASE_URL", None)
        if database_url:
            os.environ["DATABASE_URL"] = database_url
        sys.path.insert(0, str(REPO))
        os.chdir(REPO)
        import django

        django.setup()
        from django.core.management import call_command

        if database_url:
            _recreate_database(database_url)
        call_command("setuppacs", verbosity=0)
        from pacsone import storage

        temp_folder = storage.temp_dir(storage.default_location())
        one_round(items[:WARM_UP], temp_folder)
        if profile_path:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # CPU, not the waits for the disk
            result = profiler.runcall(one_round, items[WARM_UP:], temp_folder)
            profiler.dump_stats(profile_path)
        else:
            result = one_round(items[WARM_UP:], temp_folder)
        queue.put(result)
    except BaseException as exc:
        queue.put(f"round failed: {exc!r}")
        raise


def _recreate_database(database_url: str) -> None:
    from django.db import connection

    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""))
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
