"""C-FIND answer micro-benchmark (not part of `make bench`): the CPU cost per answer of fetching
the rows, building each answer identifier and encoding it, in this process, without the network.

A synthetic index (bench/synthetic_index.py, SQLite in a temporary folder) is queried at STUDY
level with no matching key (every study answers) and a workstation's return keys (the same as
bench/qr.py), and at IMAGE level with keys that come from the stored headers (which the synthetic
rows mostly lack: empty answers, but the headers are read and decoded). Two ways are timed over
every answer:

- before: `Answerer.answers()` (a pydicom Dataset per answer) + pydicom's `write_dataset`
  through pynetdicom's `encode`, which is what the C-FIND SCP did per answer;
- after: `Answerer.encoded_answers(explicit_vr)` (pacsone/dicom/net/identifier_codec.py), bytes
  straight from the rows.

Both include the SQL (one query per page of answers). Best of --repeat runs; target: the
encoded path at most 0.25 ms per answer.

    .venv/bin/python bench/find_answers.py [--studies N] [--repeat N] [--profile]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
TARGET_MS = 0.25
RETURN_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyInstanceUID"]


def setup(studies: int) -> None:
    data_dir = tempfile.mkdtemp(prefix="findbench-")
    Path(data_dir, "static").mkdir()
    os.environ.update(PACS_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="pacsone.settings", PACS_LOG_LEVEL="WARNING")
    os.environ.pop("DATABASE_URL", None)
    sys.path[:0] = [str(ROOT), str(BENCH_DIR)]
    import django

    django.setup()
    from django.core.management import call_command

    from synthetic_index import populate

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    counts = populate(studies, series_per_study=2, instances_per_series=2)
    print(f"index: {counts} built in {time.perf_counter() - started:.1f} s", file=sys.stderr)


# label -> (level, return keys); the first is the one with the target.
SCENARIOS = {
    "STUDY level, workstation keys": ("STUDY", RETURN_KEYS),
    "IMAGE level, keys from the stored headers": ("IMAGE", ["SOPInstanceUID", "SOPClassUID", "InstanceNumber",
                                                            "Rows", "Columns", "ImageType", "SeriesInstanceUID"]),
}


def identifier(level: str, keys: list[str]):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in keys:
        setattr(ds, keyword, None)
    return ds


def best_ms_per_answer(run, repeat: int) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - started)
    return best * 1000 / max(count, 1), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the encoded path")
    args = parser.parse_args()
    setup(args.studies)

    from pynetdicom.dsutils import encode

    from pacsone.dicom import query

    failed = False
    for label, (level, keys) in SCENARIOS.items():
        def answerer():
            return query.Answerer(query.build_query(identifier(level, keys), query.STUDY_ROOT), "PACSONE")

        def rows_only() -> int:
            return sum(1 for _ in answerer().rows())

        def before(explicit: bool):
            return lambda: sum(1 for ds in answerer().answers() if encode(ds, not explicit, True) is not None)

        def after(explicit: bool):
            return lambda: sum(1 for _ in answerer().encoded_answers(explicit))

        # The two paths must agree before they are compared.
        for explicit in (False, True):
            slow = [encode(ds, not explicit, True) for ds in answerer().answers()]
            if slow != list(answerer().encoded_answers(explicit)):
                print("!!! encoded_answers() differs from answers() + write_dataset", file=sys.stderr)
                return 1
        ms, count = best_ms_per_answer(rows_only, args.repeat)
        print(f"\n{label}: {len(keys)} return keys, {count} answers, best of {args.repeat} runs, ms per answer")
        print(f"| {'rows only (SQL, row dicts, headers)':42} | {ms:.3f} |")
        for explicit in (False, True):
            syntax = "explicit" if explicit else "implicit"
            ms_before, _ = best_ms_per_answer(before(explicit), args.repeat)
            ms_after, _ = best_ms_per_answer(after(explicit), args.repeat)
            flag = ""
            if level == "STUDY" and ms_after > TARGET_MS:
                flag, failed = " (!)", True
            print(f"| {syntax + ' answers() + write_dataset':42} | {ms_before:.3f} |")
            print(f"| {syntax + ' encoded_answers()':42} | {ms_after:.3f}{flag} | x{ms_before / ms_after:.1f}")
    print(f"\ntarget: STUDY level encoded_answers() <= {TARGET_MS} ms per answer, rows included"
          + (" -- (!) missed" if failed else " -- met"))

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        level, keys = SCENARIOS["STUDY level, workstation keys"]
        answerer = query.Answerer(query.build_query(identifier(level, keys), query.STUDY_ROOT), "PACSONE")
        profiler.runcall(lambda: sum(1 for _ in answerer.encoded_answers(False)))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
