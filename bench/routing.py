"""Routing benchmark (`make bench`): routing a study to a destination against a C-MOVE of the same
study to the same destination, and the routing lag of a stream of studies.

What is measured (one run of our server, `manage.py runpacs --only dicom --only tasks`, SQLite,
on a fresh data folder: the SCP, django-q2 and the job runners it starts)
    1. Throughput: a 500-instance CT study (256x256, synth.py) is stored with storescu, then
       sent to dcmtk's storescp (STORESCP, writing files) twice each way, alternating:
       - C-MOVE: dcmtk's movescu asks our SCP to move the study to STORESCP; wall time of the
         movescu process;
       - routing: a rule (each instance at once) queues a routing job for the study; its send
         time is from the runner's "job start" log line to its "job done" line (in the runner
         process: the rule's selection, one association, per-instance delivery records written
         as it goes). Job.started_at is the claim, before the dispatcher starts the runner
         process: counting from it would count that process's start-up (~1-2 s here) as sending.
         The time from queueing to done is shown too (it adds the django-q2 wake-up and the
         runner process start).
       instances/s of each (best of the runs) and their ratio (target: routing >= 0.9 x C-MOVE).
    2. Routing lag: a stream of studies (default 10 x 20 instances, 64x64) is sent with storescu,
       one association per study, one after another, with a rule sending each to a second
       storescp (LAGSCP) once the study is quiet (PACS_ROUTING_QUIET_SECONDS, default here 2 s).
       Lag of a study = the time LAGSCP received its last instance (logged by storescp's
       --exec-on-reception) - the time storescu finished sending it. Median and maximum, and
       the same less the quiet time (what the job layer adds).

Output: a table, bench/out/routing.json, logs in bench/out/logs/routing-*.log. Exit status 1
when a measurement failed (an instance missing, a job failed).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import servers
import synth
from sending import dcmtk_tool

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
LOG_DIR = OUT_DIR / "logs"
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
STUDY_SPEC = synth.DataSetSpec("ct", 500, 1, 256)
JOB_TIMEOUT = 300.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs of each way (best counts)")
    parser.add_argument("--stream-studies", type=int, default=10)
    parser.add_argument("--stream-instances", type=int, default=20)
    parser.add_argument("--quiet-seconds", type=int, default=2)
    return parser.parse_args()


class StoreScp:
    """dcmtk's storescp on a free port; with `timestamps`, each received file is logged with the
    time it arrived (file name, epoch seconds)."""

    def __init__(self, ae_title: str, work: Path, timestamps: bool = False):
        self.ae_title = ae_title
        self.folder = work / ae_title
        self.folder.mkdir(parents=True)
        self.port = servers.free_port()
        self.log = work / f"{ae_title}-received.log"
        command = [dcmtk_tool("storescp"), "-aet", ae_title, "-od", str(self.folder)]
        if timestamps:
            command += ["-xcr", f"echo #f $(date +%s.%N) >> {self.log}"]
        self.process = subprocess.Popen([*command, str(self.port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        servers.wait_for_echo(ae_title, self.port, self.process, self.log)

    def empty(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()

    def count(self) -> int:
        return sum(1 for _ in self.folder.iterdir())

    def stop(self) -> None:
        servers.stop_process(self.process)


class Server:
    """runpacs with the SCP and the task workers on a fresh data folder; this process uses the
    same database (Django set up on the same environment) to set rules and read jobs."""

    def __init__(self, work: Path, quiet_seconds: int):
        self.data_dir = work / "data"
        self.port = servers.free_port()
        self.log_file = LOG_DIR / "routing-server.log"
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("PACS_DICOM_INSTANCES", None)
        os.environ.update(PACS_DATA_DIR=str(self.data_dir), PACS_DICOM_PORT=str(self.port), PACS_AE_TITLE="PACSONE",
                          PACS_TASKS_SYNC="false", PACS_ROUTING_QUIET_SECONDS=str(quiet_seconds),
                          PACS_ROOT_PASSWORD="bench-root-password-not-used", PACS_SCP_WORKERS="1",
                          DJANGO_SETTINGS_MODULE="pacsone.settings", PYTHONUNBUFFERED="1")
        with open(self.log_file, "w") as log:
            subprocess.run([str(servers.PYTHON), "manage.py", "setuppacs"], cwd=servers.REPO, stdout=log,
                           stderr=subprocess.STDOUT, check=True)
        with open(self.log_file, "a") as log:
            self.process = subprocess.Popen([str(servers.PYTHON), "manage.py", "runpacs", "--only", "dicom", "--only",
                                             "tasks"], cwd=servers.REPO, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        servers.wait_for_echo("PACSONE", self.port, self.process, self.log_file)
        sys.path.insert(0, str(servers.REPO))
        import django

        django.setup()

    def stop(self) -> None:
        servers.stop_process(self.process)
        # The job runners it started outlive it on purpose (a job survives a restart of the task
        # workers); each names itself in the data folder: end those, by their ids.
        for pid_file in (self.data_dir / "run" / "job-runners").glob("*.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass


def storescu(port: int, files: list[Path]) -> None:
    result = subprocess.run([dcmtk_tool("storescu"), "-aet", "MODALITY", "-aec", "PACSONE", "127.0.0.1", str(port),
                             *map(str, files)], env=DCMTK_ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-500:]}")


def wait_job(job_pk: int):
    from routing.models import Job

    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_pk)
        if job.finished:
            return job
        time.sleep(0.05)
    raise RuntimeError(f"job {job_pk} not finished after {JOB_TIMEOUT}s")


def runner_seconds(log_file: Path, job_pk: int) -> float:
    """Seconds between the runner's "job start" and "job done" log lines of a job."""
    stamps = {}
    for line in log_file.read_text(errors="replace").splitlines():
        for event in ("start", "done"):
            if "routing.runner" in line and f" job {event} id={job_pk} " in line:
                stamps[event] = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    if len(stamps) != 2:
        raise RuntimeError(f"job {job_pk}: no start and done lines in {log_file}")
    return (stamps["done"] - stamps["start"]).total_seconds()


def throughput(server: Server, storescp: StoreScp, study_files: list[Path], runs: int) -> dict:
    from django.utils import timezone

    from pacsone.models import RemoteAE, Study
    from routing.matching import queue_route
    from routing.models import Delivery, RoutingRule

    storescu(server.port, study_files)
    study = Study.objects.get()
    if study.number_of_instances != len(study_files):
        raise RuntimeError(f"stored {study.number_of_instances} of {len(study_files)}")
    destination = RemoteAE.objects.create(ae_title=storescp.ae_title, host="127.0.0.1", port=storescp.port)
    RemoteAE.objects.create(ae_title="BENCHMOVE", host="127.0.0.1", port=1, is_move_destination=False)
    rule = RoutingRule.objects.create(name="throughput", match_keyword="StudyInstanceUID", each_instance=True,
                                      match_pattern=study.study_instance_uid, enabled=False)
    rule.destinations.set([destination])
    moves, routes, queued_to_done = [], [], []
    for run in range(runs):
        storescp.empty()
        t0 = time.perf_counter()
        result = subprocess.run([dcmtk_tool("movescu"), "-S", "-aet", "BENCHMOVE", "-aec", "PACSONE", "-aem",
                                 storescp.ae_title, "-k", "QueryRetrieveLevel=STUDY", "-k",
                                 f"StudyInstanceUID={study.study_instance_uid}", "127.0.0.1", str(server.port)],
                                env=DCMTK_ENV, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if result.returncode != 0 or storescp.count() != len(study_files):
            raise RuntimeError(f"C-MOVE delivered {storescp.count()}: {result.stderr[-500:]}")
        moves.append(len(study_files) / elapsed)

        storescp.empty()
        Delivery.objects.filter(destination=destination).delete()
        t0 = time.perf_counter()
        job = queue_route(study, rule, destination, timezone.now())
        job = wait_job(job.pk)
        total = time.perf_counter() - t0
        if job.state != "done" or storescp.count() != len(study_files):
            raise RuntimeError(f"routing job {job.state}: {job.last_error or job.message}; {storescp.count()} received")
        routes.append(len(study_files) / runner_seconds(server.log_file, job.pk))
        queued_to_done.append(total)
        print(f"  run {run + 1}: C-MOVE {moves[-1]:.0f}/s, routing {routes[-1]:.0f}/s "
              f"(queued to done {total:.2f} s)", file=sys.stderr, flush=True)
    return {"instances": len(study_files), "cmove_per_s": max(moves), "route_per_s": max(routes),
            "ratio": max(routes) / max(moves), "route_queued_to_done_s": min(queued_to_done),
            "runs": {"cmove_per_s": moves, "route_per_s": routes, "queued_to_done_s": queued_to_done}}


def stream_files(work: Path, studies: int, instances: int) -> dict[str, list[Path]]:
    sys.path.insert(0, str(servers.REPO))
    from tests.helpers import make_dataset, write_dataset

    made = {}
    for number in range(1, studies + 1):
        uid = f"1.2.826.0.1.3680043.10.1.{number}"
        made[uid] = [write_dataset(make_dataset(study_uid=uid, series_uid=f"{uid}.1", sop_uid=f"{uid}.1.{i}",
                                                patient_id=f"LAG{number}", InstanceNumber=i, rows=64),
                                   work / "stream" / str(number) / f"{i}.dcm") for i in range(1, instances + 1)]
    return made


def routing_lag(server: Server, lagscp: StoreScp, work: Path, studies: int, instances: int, quiet: int) -> dict:
    from pacsone.models import RemoteAE
    from routing.models import Job, RoutingRule

    destination = RemoteAE.objects.create(ae_title=lagscp.ae_title, host="127.0.0.1", port=lagscp.port)
    rule = RoutingRule.objects.create(name="lag", match_keyword="PatientID", match_pattern="LAG*")
    rule.destinations.set([destination])
    files = stream_files(work, studies, instances)
    sent_at = {}
    for uid, paths in files.items():
        storescu(server.port, paths)
        sent_at[uid] = time.time()
    deadline = time.monotonic() + JOB_TIMEOUT
    while Job.objects.filter(rule=rule, state__in=Job.UNFINISHED).exists() or \
            Job.objects.filter(rule=rule).count() < studies:
        if time.monotonic() > deadline:
            raise RuntimeError("the stream's routing jobs did not finish")
        time.sleep(0.1)
    failed = Job.objects.filter(rule=rule).exclude(state="done")
    if failed:
        raise RuntimeError(f"{failed.count()} routing job(s) not done: {failed.first().last_error}")
    time.sleep(0.5)  # the last reception commands
    last = {}
    for line in lagscp.log.read_text().splitlines():
        name, stamp = line.rsplit(" ", 1)
        uid = name.split(".", 1)[1].rsplit(".", 2)[0]  # CT.<study>.1.<n> -> <study>
        last[uid] = max(last.get(uid, 0.0), float(stamp))
    received = sum(1 for _ in lagscp.folder.iterdir())
    if received != studies * instances or set(last) != set(files):
        raise RuntimeError(f"LAGSCP received {received} of {studies * instances}")
    lags = [last[uid] - sent_at[uid] for uid in files]
    return {"studies": studies, "instances_per_study": instances, "quiet_seconds": quiet,
            "lag_median_s": statistics.median(lags), "lag_max_s": max(lags),
            "added_median_s": statistics.median(lags) - quiet, "added_max_s": max(lags) - quiet, "lags_s": lags}


def main() -> int:
    args = parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="routing-bench-", dir=OUT_DIR))
    dataset = synth.ensure(STUDY_SPEC, OUT_DIR / "data")
    server = storescp = lagscp = None
    status = 0
    try:
        storescp = StoreScp("STORESCP", work)
        lagscp = StoreScp("LAGSCP", work, timestamps=True)
        server = Server(work, args.quiet_seconds)
        print(f"routing benchmark: {dataset.count} instances, {args.runs} run(s) each way", file=sys.stderr)
        results = {"throughput": throughput(server, storescp, dataset.files, args.runs)}
        print("routing lag: a stream of studies", file=sys.stderr, flush=True)
        results["lag"] = routing_lag(server, lagscp, work, args.stream_studies, args.stream_instances,
                                     args.quiet_seconds)
    except Exception as error:
        print(f"!!! FAILED: {error}", file=sys.stderr)
        results, status = {"error": str(error)}, 1
    finally:
        for process in (server, storescp, lagscp):
            if process is not None:
                process.stop()
        shutil.rmtree(work, ignore_errors=True)
    (OUT_DIR / "routing.json").write_text(json.dumps(results, indent=2))
    if status == 0:
        t, lag = results["throughput"], results["lag"]
        print(f"\n{'':34}{'instances/s':>12}")
        print(f"{'C-MOVE to storescp (movescu)':34}{t['cmove_per_s']:>12.0f}")
        print(f"{'routing job to storescp':34}{t['route_per_s']:>12.0f}")
        print(f"{'ratio (target >= 0.9)':34}{t['ratio']:>12.2f}")
        print(f"routing job queued to done: {t['route_queued_to_done_s']:.2f} s for {t['instances']} instances")
        print(f"routing lag over {lag['studies']} studies x {lag['instances_per_study']} (quiet time "
              f"{lag['quiet_seconds']} s): median {lag['lag_median_s']:.2f} s, max {lag['lag_max_s']:.2f} s; "
              f"beyond the quiet time: median {lag['added_median_s']:.2f} s, max {lag['added_max_s']:.2f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
