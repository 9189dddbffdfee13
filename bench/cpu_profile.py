"""Where our SCP worker's CPU goes per stored instance (`bench/cpu_profile.py mr`).

Starts our server (one SCP worker, SQLite unless --mariadb) on a fresh data folder, sends a
data set of bench/out/data over 1 (or --associations N) storescu associations while py-spy
samples the worker's CPU only (no --idle: waiting threads are not sampled), and prints the CPU
per instance (from /proc, with and without the profiler) and each function's inclusive share of
the CPU samples, as ms of CPU per instance. Unlike a wall-clock rate, CPU per instance barely
moves when other processes share the machine, so it is what changes are judged by here; the
ratio against Orthanc comes from `run.py`, side by side.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import profiling
import sending
import servers
import synth

SETS = {"ct": synth.DataSetSpec("ct", 1000, 4, 512), "mr": synth.DataSetSpec("mr", 600, 3, 256)}


def system_seconds(pid: int) -> float:
    """The system (kernel) part of a process's CPU time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def run(dataset: synth.DataSet, backend: str, associations: int, sample: bool, out: Path, workers: int = 1,
        idle: bool = False, gil: bool = False) -> tuple[float, Path | None]:
    """CPU ms per instance of the workers; the py-spy output of the first worker when sampled
    (`idle`: waiting threads too, so wall time instead of CPU)."""
    raw = out / f"cpu-{dataset.name}-{backend}-{associations}.txt" if sample else None
    with servers.OurServer(backend, out, out, f"cpu-{dataset.name}", scp_workers=workers) as server:
        pids = server.worker_pids()
        pid = pids[0]
        before = sum(servers.cpu_seconds(p) for p in pids)
        system_before = sum(system_seconds(p) for p in pids)
        recorder = None
        if sample:
            command = [str(profiling.PY_SPY), "record", "--pid", str(pid), "--rate", "500", "--threads",
                       "--nonblocking", "--format", "raw", "--output", str(raw)] + (["--idle"] if idle else []) + (["--gil"] if gil else [])
            recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        result = sending.send(dataset, server.ae_title, server.port, associations, out / "storescu.log")
        cpu = sum(servers.cpu_seconds(p) for p in pids) - before
        system = sum(system_seconds(p) for p in pids) - system_before
        print(f"  {dataset.count / result.seconds:.1f} inst/s; CPU {cpu * 1000 / dataset.count:.2f} ms/inst"
              f" of which system {system * 1000 / dataset.count:.2f}")
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        if not result.ok or server.stored_instances() != dataset.count:
            sys.exit(f"send failed; see {out}")
    return cpu * 1000 / dataset.count, raw


def summarize(raw: Path, cpu_ms: float, top: int) -> str:
    inclusive: Counter = Counter()
    self_frames: Counter = Counter()
    total = 0
    for frames, count in profiling.parse_raw(raw):
        total += count
        code = [profiling.short_frame(f, with_line=False) for f in frames[1:]]
        for function in set(code):
            inclusive[function] += count
        if code:
            self_frames[code[-1]] += count
    lines = [f"{total} CPU samples; {cpu_ms:.2f} ms CPU per instance under the profiler", "inclusive:"]
    lines += [f"  {n / total:6.1%} {cpu_ms * n / total:6.3f} ms  {f}" for f, n in inclusive.most_common(top)]
    lines.append("self:")
    lines += [f"  {n / total:6.1%} {cpu_ms * n / total:6.3f} ms  {f}" for f, n in self_frames.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(SETS))
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--mariadb", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="unprofiled runs (median CPU reported)")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="SCP worker processes (the first is sampled)")
    parser.add_argument("--idle", action="store_true", help="sample waiting threads too (wall time)")
    parser.add_argument("--gil", action="store_true",
                        help="sample only the thread holding the GIL (Python's own work; a thread in fsync or"
                             " another system call that releases the GIL is not counted)")
    args = parser.parse_args(argv)
    dataset = synth.ensure(SETS[args.dataset], Path(__file__).resolve().parent / "out" / "data")
    backend = "mariadb" if args.mariadb else "sqlite"
    with tempfile.TemporaryDirectory(prefix="cpu-profile-") as folder:
        out = Path(folder)
        plain = sorted(run(dataset, backend, args.associations, False, out, args.workers)[0]
                       for _ in range(args.repeat))
        print(f"{dataset.name} {backend} {args.associations} assoc: CPU ms per instance "
              f"{' '.join(f'{v:.2f}' for v in plain)} (median {plain[len(plain) // 2]:.2f})")
        if not args.no_profile:
            cpu_ms, raw = run(dataset, backend, args.associations, True, out, args.workers, args.idle,
                              args.gil)
            print(summarize(raw, cpu_ms, args.top))


if __name__ == "__main__":
    main(sys.argv[1:])
