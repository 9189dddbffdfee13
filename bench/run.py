"""Storage benchmark (`make bench`): how fast our DICOM SCP stores images, next to Orthanc.

What is measured
    The wall time dcmtk's `storescu` needs to send a data set to a storage SCP that writes
    every instance durably and indexes it before answering Success, from the start of the first
    storescu process to the exit of the last. From it: instances/s and MB/s (MB = 10^6 bytes of
    Part-10 files sent).

Data sets (generated once, cached in bench/out/data/; see synth.py)
    CT: 1,000 slices of 512x512, 16-bit signed, 4 studies of 4 patients (--quick: 200).
    MR: 600 slices of 256x256, 16-bit, 3 studies of 3 patients (--quick: 100).

Targets and how each measurement runs
    - ours: `manage.py setuppacs` + `manage.py runpacs --only dicom` on a fresh data folder, on
      SQLite, on MariaDB (when the mysqlclient driver imports and the server answers; database
      pacsone_bench or $BENCH_MARIADB_DATABASE) and on PostgreSQL (when psycopg imports and the
      server answers; database pacsone_bench or $BENCH_POSTGRES_DATABASE); each database dropped
      and created for each measurement. PACS_SCP_WORKERS as the settings default it unless
      --scp-workers is given.
    - Orthanc (/usr/sbin/Orthanc, its defaults otherwise) on a fresh folder with its own
      configuration, with its SQLite index (no plugins); when ours runs on MariaDB, with its
      index on the same MariaDB server through Debian's orthanc-mysql plugin; when ours runs on
      PostgreSQL, on PostgreSQL through Debian's orthanc-postgresql plugin (each its own
      database, <ours>_orthanc, dropped and created for each measurement; files still on disk).
    Each Orthanc runs twice: made as durable as ours (durability.py: its SQLite commits synced,
    its files' names synced) and as shipped; `strace` first counts each server's syncs per
    stored instance (the evidence), unless --skip-durability-check.
    Each of our backends is compared with Orthanc on the matching index: SQLite with SQLite,
    MariaDB with MySQL (on MariaDB), PostgreSQL with PostgreSQL; where orthanc-mysql is not
    installed, MariaDB with Orthanc's SQLite, and the run says so.
    Each (data set, number of associations, target) starts a fresh server on free loopback
    ports with an empty archive, sends over 1 association (one storescu) or 4 (the file list
    cut in 4 contiguous parts, 4 storescu at once), then checks that the archive counts every
    instance (ours: `manage.py archivestats --json`; Orthanc: GET /statistics), reads the peak
    resident memory (VmHWM) of our SCP worker processes (summed) or of Orthanc, and stops it.

--rounds N (default 3) measures each target N times, interleaved (ours SQLite, ours MariaDB, ours
PostgreSQL, Orthanc SQLite durable and as shipped, Orthanc MySQL ..., Orthanc PostgreSQL ...;
each round starting one target later), and the table keeps each one's fastest round: on a
machine shared with other work the least disturbed round of each, both sides treated alike
(every round's rate is printed too). Before each measurement the disk must have been idle for
a second (servers.wait_for_quiet_disk).

--profile (or --profile-only) also sends the CT set over 1 association to our server (SQLite,
one SCP worker) while py-spy samples that worker, and prints where its threads spend their time
(see profiling.py). Profiling slows the worker down: its timing is not a result.

Output: a table at the end, bench/out/results.json, and logs of every server and storescu run
in bench/out/logs/. The exit status is 1 when a measurement failed (an instance missing, a
storescu failure, an error in a server's log).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import durability
import profiling
import sending
import servers
import synth

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
DATA_DIR = OUT_DIR / "data"
LOG_DIR = OUT_DIR / "logs"
WORK_DIR = OUT_DIR / "work"  # the servers' data folders, removed after each measurement

FULL_SETS = [synth.DataSetSpec("ct", 1000, 4, 512), synth.DataSetSpec("mr", 600, 3, 256)]
QUICK_SETS = [synth.DataSetSpec("ct", 200, 4, 512), synth.DataSetSpec("mr", 100, 3, 256)]
ASSOCIATIONS = (1, 4)
BUSY_LOAD = 1.0  # 1-minute load average above which the run warns that it shares the machine
# Lines of a server's log that mean something went wrong.
PROBLEM_LINE = re.compile(r" (ERROR|CRITICAL) |Traceback|^E: |^E\d{4} ")  # ours, dcmtk, Orthanc
WARNING_LINE = re.compile(r" WARNING |^W: ")


@dataclass
class Measurement:
    target: str  # "ours" or "orthanc"
    backend: str  # "sqlite", "mariadb" or "postgresql" (ours); "sqlite", "mysql" or "postgresql" (Orthanc's index)
    dataset: str
    associations: int
    instances_sent: int
    bytes_sent: int
    seconds: float
    instances_stored: int
    peak_rss_mb: float  # MiB; ours: summed over the SCP workers
    cpu_seconds: float  # the server's CPU time (user + system) during the send; ours: all workers
    scp_workers: int = 0
    durable: bool = False  # Orthanc made as durable as ours (durability.py); False: as shipped
    associations_per_worker: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # any of them fails the measurement
    warnings: list[str] = field(default_factory=list)  # reported, not failing

    @property
    def instances_per_second(self) -> float:
        return self.instances_sent / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.bytes_sent / 1e6 / self.seconds

    @property
    def cpu_ms_per_instance(self) -> float:
        return self.cpu_seconds * 1000 / self.instances_sent

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "instances_per_second": round(self.instances_per_second, 1),
                "mb_per_second": round(self.mb_per_second, 1),
                "cpu_ms_per_instance": round(self.cpu_ms_per_instance, 2), "ok": self.ok}


# --- Command line and environment ----------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data sets (200 CT, 100 MR) to iterate fast")
    parser.add_argument("--only", choices=("ct", "mr"), help="one data set only")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure each target this many times, interleaved (ours, Orthanc, ours, ...); the "
                             "table shows each target's fastest round (on a shared machine, the least disturbed:"
                             " on a 2-core VM the same CPU-bound loop was seen to take 0.28-0.50 s from one"
                             " minute to the next)")
    parser.add_argument("--skip-orthanc", action="store_true", help="do not measure Orthanc")
    parser.add_argument("--skip-mariadb", action="store_true",
                        help="do not measure our server, nor Orthanc, on MariaDB")
    parser.add_argument("--require-mariadb", action="store_true",
                        help="fail instead of skipping MariaDB when its driver or server is missing")
    parser.add_argument("--skip-postgresql", action="store_true",
                        help="do not measure our server, nor Orthanc, on PostgreSQL")
    parser.add_argument("--require-postgresql", action="store_true",
                        help="fail instead of skipping PostgreSQL when its driver, server or Orthanc's plugin is missing")
    parser.add_argument("--orthanc-as-shipped-only", action="store_true",
                        help="measure Orthanc as shipped only, not also made as durable as ours (durability.py)")
    parser.add_argument("--skip-durability-check", action="store_true",
                        help="do not count each server's syncs per instance with strace first")
    parser.add_argument("--scp-workers", type=int, help="PACS_SCP_WORKERS for our server (default: its own)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one SCP worker receiving the CT set over 1 association")
    parser.add_argument("--profile-only", action="store_true", help="only the profile, no measurements")
    args = parser.parse_args(argv)
    if args.skip_mariadb and args.require_mariadb:
        parser.error("--skip-mariadb and --require-mariadb contradict each other")
    if args.skip_postgresql and args.require_postgresql:
        parser.error("--skip-postgresql and --require-postgresql contradict each other")
    return args


def check_tools(args: argparse.Namespace) -> None:
    missing = []
    for tool in ("storescu", "echoscu"):
        try:
            sending.dcmtk_tool(tool)
        except FileNotFoundError as exc:
            missing.append(str(exc))
    if not args.skip_orthanc and not args.profile_only and not shutil.which(servers.ORTHANC_BINARY):
        missing.append(servers.ORTHANC_BINARY)
    if (args.profile or args.profile_only) and not profiling.PY_SPY.exists():
        missing.append(f"{profiling.PY_SPY} (pip install -r bench/requirements.txt)")
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}")


def our_backends(args: argparse.Namespace) -> list[str]:
    skip = {backend for backend in ("mariadb", "postgresql") if getattr(args, f"skip_{backend}")}
    require = {backend for backend in ("mariadb", "postgresql") if getattr(args, f"require_{backend}")}
    return servers.available_backends(skip, require)


def orthanc_indexes(args: argparse.Namespace, backends: list[str]) -> list[str]:
    if args.skip_orthanc:
        return []
    return servers.available_orthanc_indexes(backends, {"postgresql"} if args.require_postgresql else set())


def orthanc_durabilities(args: argparse.Namespace) -> list[bool]:
    """Orthanc made as durable as ours first (the comparison the benchmark judges by), then as shipped."""
    return [False] if args.orthanc_as_shipped_only else [True, False]


def check_durable_orthanc(args: argparse.Namespace) -> None:
    """Build the library that makes Orthanc durable; without a compiler, Orthanc as shipped only."""
    if args.skip_orthanc or args.orthanc_as_shipped_only or args.profile_only:
        return
    try:
        durability.shim_library()
    except RuntimeError as exc:
        print(f"*** Orthanc as shipped only: {exc}", flush=True)
        args.orthanc_as_shipped_only = True


RECENT_RUN_SECONDS = 360


def warn_if_just_ran() -> None:
    """The previous run removed its servers' files when it ended; on ext4 without a journal the
    inodes freed then slow file creation for up to 6 minutes (servers.retire)."""
    try:
        finished = datetime.datetime.fromisoformat(json.loads((OUT_DIR / "results.json").read_text())["finished"])
    except (OSError, ValueError, KeyError):
        return
    ago = (datetime.datetime.now().astimezone() - finished).total_seconds()
    if 0 <= ago < RECENT_RUN_SECONDS:
        print(f"*** Note: the previous run ended {ago:.0f} s ago; on a file system without a journal the files it "
              f"removed slow file creation for up to {RECENT_RUN_SECONDS // 60} minutes (bench/README.md).")


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=BENCH_DIR, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# --- Measuring --------------------------------------------------------------------------------------


def lines_matching(pattern: re.Pattern, text: str, name: str, limit: int = 5) -> list[str]:
    bad = [line.strip() for line in text.splitlines() if pattern.search(line)]
    if not bad:
        return []
    shown = "; ".join(bad[:limit]) + (f"; ... ({len(bad)} lines)" if len(bad) > limit else "")
    return [f"{name}: {shown}"]


def associations_per_worker(log_text: str) -> list[int]:
    """How the kernel spread the benchmark's associations (not the C-ECHOs) over the workers."""
    pattern = rf"pid=(\d+) association established calling_ae={sending.CALLING_AE} "
    pids = Counter(re.findall(pattern, log_text))
    return sorted(pids.values(), reverse=True)


def verify(measurement: Measurement, send_result: sending.SendResult, storescu_log: Path) -> None:
    if not send_result.ok:
        measurement.problems.append(f"{send_result.failed_processes} storescu process(es) failed; see {storescu_log}")
    if measurement.instances_stored != measurement.instances_sent:
        measurement.problems.append(
            f"stored {measurement.instances_stored} of {measurement.instances_sent} instances"
        )
    check_log(measurement, storescu_log.read_text(errors="replace"), storescu_log.name)


def check_log(measurement: Measurement, text: str, name: str) -> None:
    measurement.problems += lines_matching(PROBLEM_LINE, text, name)
    measurement.warnings += lines_matching(WARNING_LINE, text, name)


def measure_ours(dataset: synth.DataSet, associations: int, backend: str, scp_workers: int | None) -> Measurement:
    label = f"{backend}-{dataset.name}-{associations}assoc"
    storescu_log = LOG_DIR / f"storescu-ours-{label}.log"
    with servers.OurServer(backend, WORK_DIR, LOG_DIR, label, scp_workers) as server:
        servers.wait_for_quiet_disk(WORK_DIR)  # the set-up's writes, and the previous target's
        cpu_before = server.cpu_seconds()
        result = sending.send(dataset, server.ae_title, server.port, associations, storescu_log)
        cpu = server.cpu_seconds() - cpu_before
        measurement = Measurement(
            "ours", backend, dataset.name, associations, dataset.count, dataset.total_bytes,
            result.seconds, server.stored_instances(), server.peak_rss_mib(), cpu, len(server.worker_pids()),
        )
    log_text = server.log_text()
    measurement.associations_per_worker = associations_per_worker(log_text)
    verify(measurement, result, storescu_log)
    check_log(measurement, log_text, server.log_file.name)
    return measurement


def measure_orthanc(dataset: synth.DataSet, associations: int, index: str, durable: bool) -> Measurement:
    label = f"{index}{'-durable' if durable else ''}-{dataset.name}-{associations}assoc"
    storescu_log = LOG_DIR / f"storescu-orthanc-{label}.log"
    with servers.OrthancServer(WORK_DIR, LOG_DIR, label, index=index, durable=durable) as server:
        servers.wait_for_quiet_disk(WORK_DIR)
        cpu_before = server.cpu_seconds()
        result = sending.send(dataset, server.ae_title, server.port, associations, storescu_log)
        cpu = server.cpu_seconds() - cpu_before
        measurement = Measurement(
            "orthanc", index, dataset.name, associations, dataset.count, dataset.total_bytes,
            result.seconds, server.stored_instances(), server.peak_rss_mib(), cpu, durable=durable,
        )
    verify(measurement, result, storescu_log)
    check_log(measurement, server.log_file.read_text(errors="replace"), server.log_file.name)
    return measurement


def target_name(m: Measurement) -> str:
    return f"{m.target} {m.backend}" + (" durable" if m.durable else "")


def report(measurement: Measurement) -> None:
    m = measurement
    print(f"  {target_name(m):<22} {m.dataset} x{m.instances_sent} over {m.associations} assoc: "
          f"{m.seconds:6.1f} s  {m.instances_per_second:6.1f} inst/s  {m.mb_per_second:6.1f} MB/s  "
          f"CPU {m.cpu_ms_per_instance:5.2f} ms/inst  peak RSS {m.peak_rss_mb:.0f} MB", flush=True)
    for problem in m.problems:
        print(f"  !!! FAILED: {problem}", flush=True)
    for warning in m.warnings:
        print(f"  (warning) {warning}", flush=True)


def run_measurements(datasets, backends, indexes, args) -> tuple[list[Measurement], list[str]]:
    """All measurements; a server that fails to start or answer is reported and skipped."""
    measurements, errors = [], []
    for dataset in datasets:
        for associations in ASSOCIATIONS:
            runs = [(f"ours {backend}", measure_ours, (dataset, associations, backend, args.scp_workers))
                    for backend in backends]
            runs += [(f"orthanc {index}{' durable' if durable else ''}", measure_orthanc,
                      (dataset, associations, index, durable))
                     for index in indexes for durable in orthanc_durabilities(args)]
            # Each round starts one target later: the first after a change of data set or of
            # association count measured slower (what the previous targets left the disk doing).
            rotated = [run for round_number in range(args.rounds)
                       for run in runs[round_number % len(runs):] + runs[:round_number % len(runs)]]
            for name, measure, arguments in rotated:
                try:
                    measurements.append(measure(*arguments))
                except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                    errors.append(f"{name} {dataset.name} over {associations} assoc: {exc}")
                    print(f"  !!! FAILED: {errors[-1]}", flush=True)
                    continue
                report(measurements[-1])
    return measurements, errors


CENSUS_INSTANCES = 100


def durability_census(dataset: synth.DataSet, args: argparse.Namespace) -> list[dict]:
    """How many syncs each server makes per stored instance, by kind, counted with strace while
    it stores the first CENSUS_INSTANCES instances of `dataset` over 1 association: ours on
    SQLite (one SCP worker), Orthanc on SQLite durable and as shipped. The evidence that the
    comparison is at the same durability (durability.py)."""
    files = dataset.files[:CENSUS_INSTANCES]
    rows = []

    def count(name: str, server, pid: int, storage: Path) -> None:
        log = LOG_DIR / f"storescu-census-{name.replace(' ', '-')}.log"

        def send():
            with open(log, "w") as output:
                subprocess.run(sending.storescu_command(server.ae_title, server.port, files), check=True,
                               env=dict(os.environ, TCP_NODELAY="1"), stdout=output, stderr=subprocess.STDOUT)

        trace = LOG_DIR / f"strace-census-{name.replace(' ', '-')}.txt"
        per_instance = durability.sync_census(pid, storage, send, len(files), trace)
        rows.append({"target": name, **{kind: round(value, 2) for kind, value in per_instance.items()}})

    with servers.OurServer("sqlite", WORK_DIR, LOG_DIR, "census", scp_workers=1) as server:
        count("ours sqlite", server, server.worker_pids()[0], server.data_dir / "storage")
    if not args.skip_orthanc:
        for durable in orthanc_durabilities(args):
            name = f"orthanc sqlite {'durable' if durable else 'as shipped'}"
            with servers.OrthancServer(WORK_DIR, LOG_DIR, f"census-{name.split()[-1]}", durable=durable) as server:
                count(name, server, server.process.pid, server.storage)
    return rows


def census_table(rows: list[dict]) -> str:
    kinds = ("file data", "folder names", "index", "other")
    lines = [f"  {'target':<28}" + "".join(f"{kind:>14}" for kind in kinds)]
    lines += [f"  {row['target']:<28}" + "".join(f"{row[kind]:>14.2f}" for kind in kinds) for row in rows]
    return "\n".join(lines)


def run_profile(ct: synth.DataSet) -> dict:
    """Send the CT set over 1 association to one SQLite worker while py-spy samples it."""
    print(f"\nProfiling one SCP worker (SQLite, 1 worker) receiving {ct.count} CT slices over 1 association ...")
    raw = OUT_DIR / "profile-raw.txt"
    storescu_log = LOG_DIR / "storescu-profile.log"
    with servers.OurServer("sqlite", WORK_DIR, LOG_DIR, "profile", scp_workers=1) as server:
        worker = server.worker_pids()[0]
        with profiling.Recorder(worker, raw, LOG_DIR / "py-spy.log"):
            result = sending.send(ct, server.ae_title, server.port, 1, storescu_log)
        stored = server.stored_instances()
    profile = profiling.summarize(raw)
    print(f"(under the profiler: {ct.count / result.seconds:.1f} inst/s, {stored} of {ct.count} stored; "
          f"raw stacks in {raw})")
    print(profiling.format_profile(profile, ct.count))
    return {"instances_per_second_under_profiler": round(ct.count / result.seconds, 1),
            "instances_stored": stored, "raw": str(raw), **profile.as_dict()}


# --- Reporting ------------------------------------------------------------------------------------


def fastest_rounds(measurements: list[Measurement]) -> list[Measurement]:
    """Per target, data set and association count, the fastest of its rounds (a failed one, if any failed)."""
    best: dict[tuple, Measurement] = {}
    for m in measurements:
        key = (m.target, m.backend, m.durable, m.dataset, m.associations)
        kept = best.get(key)
        if kept is None or (kept.ok and (not m.ok or m.instances_per_second > kept.instances_per_second)):
            best[key] = m
    return list(best.values())


def rounds_summary(measurements: list[Measurement]) -> str:
    """Every round's rate, when there were several."""
    rates: dict[tuple, list[str]] = {}
    for m in measurements:
        rates.setdefault((m.dataset, m.associations, target_name(m)), []).append(f"{m.instances_per_second:.0f}")
    if all(len(r) == 1 for r in rates.values()):
        return ""
    return "\n".join(f"  {d} x{a} {t}: {' '.join(r)} inst/s" for (d, a, t), r in rates.items())


def table(measurements: list[Measurement]) -> str:
    """One row per measurement of ours, beside Orthanc's on the matching index
    (servers.orthanc_index_for): made as durable as ours, and as shipped."""
    measurements = fastest_rounds(measurements)
    orthanc = {(m.dataset, m.associations, m.backend, m.durable): m for m in measurements if m.target == "orthanc"}
    header = ("dataset", "assoc", "backend", "Orthanc index", "ours inst/s", "Orthanc durable inst/s",
              "ours/Orthanc durable", "Orthanc as shipped inst/s", "ours/Orthanc as shipped", "ours MB/s",
              "ours CPU ms/inst", "Orthanc durable CPU ms/inst", "Orthanc as shipped CPU ms/inst",
              "ours peak RSS MB", "Orthanc peak RSS MB", "ours assoc/worker", "status")
    rows = []
    for m in (m for m in measurements if m.target == "ours"):
        index = servers.orthanc_index_for(m.backend)
        durable, shipped = (orthanc.get((m.dataset, m.associations, index, d)) for d in (True, False))
        others = [o for o in (durable, shipped) if o is not None]
        status = "ok" if m.ok and all(o.ok for o in others) else "FAILED"
        rows.append((
            m.dataset, str(m.associations), m.backend, index if others else "-", f"{m.instances_per_second:.1f}",
            *_beside(m, durable), *_beside(m, shipped), f"{m.mb_per_second:.1f}",
            f"{m.cpu_ms_per_instance:.2f}", *(f"{o.cpu_ms_per_instance:.2f}" if o else "-" for o in (durable, shipped)),
            f"{m.peak_rss_mb:.0f}", f"{others[0].peak_rss_mb:.0f}" if others else "-",
            "+".join(map(str, m.associations_per_worker)) or "-", status,
        ))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _beside(ours: Measurement, orthanc: Measurement | None) -> tuple[str, str]:
    """Orthanc's rate and ours divided by it."""
    if orthanc is None:
        return "-", "-"
    return f"{orthanc.instances_per_second:.1f}", f"{ours.instances_per_second / orthanc.instances_per_second:.2f}"


def orthanc_version() -> str:
    result = subprocess.run([servers.ORTHANC_BINARY, "--version"], capture_output=True, text=True)
    return (result.stdout.splitlines() or ["?"])[0]


def write_results(args, datasets, backends, indexes, measurements, profile, errors, census) -> Path:
    results = {
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg()[0]},
        "options": vars(args),
        "orthanc": orthanc_version() if indexes else None,
        "orthanc_indexes": indexes,
        "orthanc_index_for": {backend: servers.orthanc_index_for(backend) for backend in backends} if indexes else {},
        "datasets": [{"name": d.name, "folder": str(d.folder), "instances": d.count, "bytes": d.total_bytes}
                     for d in datasets],
        "measurements": [m.as_dict() for m in measurements],
        "syncs_per_instance": census,
        "profile": profile,
        "errors": errors,
    }
    path = OUT_DIR / "results.json"
    path.write_text(json.dumps(results, indent=2))
    return path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    check_tools(args)
    load = os.getloadavg()[0]
    if load > BUSY_LOAD:
        print(f"*** Note: the load average is {load:.1f}: other work on this machine will lower the figures.")
    warn_if_just_ran()
    for folder in (DATA_DIR, LOG_DIR, WORK_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    backends = [] if args.profile_only else our_backends(args)
    indexes = [] if args.profile_only else orthanc_indexes(args, backends)
    check_durable_orthanc(args)
    datasets = [synth.ensure(spec, DATA_DIR) for spec in (QUICK_SETS if args.quick else FULL_SETS)
                if args.only in (None, spec.name)]
    measurements, errors, census = [], [], []
    if not (args.profile_only or args.skip_durability_check):
        if durability.strace_available():
            print(f"\nDurability: syncs per stored instance (strace, {CENSUS_INSTANCES} {datasets[-1].name.upper()} "
                  f"instances over 1 association)")
            census = durability_census(datasets[-1], args)
            print(census_table(census))
        else:
            print("*** Durability check skipped: strace is missing (apt-get install strace)")
        for backend in backends:
            if backend != "sqlite":
                print(f"  {servers.BACKEND_NAMES[backend]} commits: {durability.database_settings(backend)}")
    if not args.profile_only:
        orthanc = f"Orthanc on {', '.join(indexes)}" if indexes else "Orthanc skipped"
        print(f"\nMeasuring (ours on {', '.join(backends)}; {orthanc})")
        measurements, errors = run_measurements(datasets, backends, indexes, args)
    profile = run_profile(datasets[0]) if args.profile or args.profile_only else None
    errors += [f"{m.target} {m.backend} {m.dataset} over {m.associations} assoc: {'; '.join(m.problems)}"
               for m in measurements if not m.ok]
    servers.remove_retired()
    results = write_results(args, datasets, backends, indexes, measurements, profile, errors, census)
    if measurements:
        summary = rounds_summary(measurements)
        if summary:
            print(f"\nEach round (inst/s):\n{summary}")
        print(f"\n{table(measurements)}\n")
        if "mariadb" in backends and indexes and servers.orthanc_index_for("mariadb") == "sqlite":
            print(f"(ours on MariaDB against Orthanc on SQLite: {servers.ORTHANC_MYSQL_PLUGIN} is not installed)")
    for error in errors:
        print(f"!!! FAILED: {error}")
    print(f"Results: {results}; logs: {LOG_DIR}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
