"""Aggregate ingest rate of two nodes against one, on the same PostgreSQL database.

One node: `runpacs --only dicom --node n1` with 2 SCP workers. Two nodes: n1 and n2 with one
worker each, sharing the database and the storage folder, the associations split between their
ports (as a TCP load balancer would). The same number of worker processes in both, so the figure
shows what running as several nodes costs or gains on the same hardware; on a machine with more
cores than one node uses, or on separate machines, the second node brings its own CPU.

Each configuration runs on a freshly created database (`pacsone_bench_nodes`, or
$BENCH_POSTGRES_DATABASE) with a fresh storage folder; the best of --rounds is kept.
    .venv/bin/python bench/nodes.py [--quick] [--rounds N] [--associations N]
Results: bench/out/nodes.json and a table on stdout.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sending  # noqa: E402
import servers  # noqa: E402
import synth  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE", "pacsone_bench_nodes")
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
FULL_SET = synth.DataSetSpec("ct", 1000, 8, 256)
QUICK_SET = synth.DataSetSpec("ct", 300, 4, 256)


def sql(statement: str, database_url: str = SERVER_URL):
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(statement)
        return rows.fetchall() if rows.description else None


def recreate_database() -> None:
    sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    sql(f"CREATE DATABASE \"{DATABASE}\" TEMPLATE template0 ENCODING 'UTF8'")


class Node:
    def __init__(self, name: str, root: Path, workers: int):
        self.name, self.port = name, servers.free_port()
        self.log_file = root / f"{name}.log"
        self.env = dict(os.environ, DATABASE_URL=DATABASE_URL, PACS_DATA_DIR=str(root / name),
                        PACS_STORAGE_DIR=str(root / "storage"), PACS_SHARED_DIR=str(root / "shared"),
                        PACS_SECRET_KEY="bench-nodes-shared-secret-key", PACS_JOURNAL_KEY_FILE=str(root / "journal.key"),
                        PACS_DICOM_PORT=str(self.port), PACS_AE_TITLE="PACSONE", PACS_SCP_WORKERS=str(workers),
                        PACS_TASKS_SYNC="false", PACS_ROOT_PASSWORD="bench-root-password-not-used",
                        PACS_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
        for name_ in ("PACS_REDIS_URL", "PACS_DICOM_INSTANCES"):
            self.env.pop(name_, None)
        self.process = None

    def manage(self, *args: str) -> None:
        with open(self.log_file, "a") as log:
            subprocess.run([str(servers.PYTHON), "manage.py", *args], cwd=servers.REPO, env=self.env, stdout=log,
                           stderr=subprocess.STDOUT, check=True)

    def start(self) -> "Node":
        with open(self.log_file, "a") as log:
            self.process = subprocess.Popen(
                [str(servers.PYTHON), "manage.py", "runpacs", "--only", "dicom", "--node", self.name],
                cwd=servers.REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        servers.wait_for_echo("PACSONE", self.port, self.process, self.log_file)
        return self

    def stop(self) -> None:
        if self.process is not None:
            servers.stop_process(self.process)


def send_split(dataset: synth.DataSet, ports: list[int], associations: int, log_file: Path) -> float:
    """`associations` storescu processes at once, dealt round-robin over the nodes' ports."""
    parts = sending.split_files(dataset.files, associations)
    env = dict(os.environ, TCP_NODELAY="1")
    with open(log_file, "w") as log:
        start = time.perf_counter()
        processes = [subprocess.Popen(sending.storescu_command("PACSONE", ports[i % len(ports)], paths), env=env,
                                      stdout=log, stderr=subprocess.STDOUT) for i, paths in enumerate(parts)]
        failed = sum(1 for p in processes if p.wait() != 0)
        seconds = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{failed} storescu process(es) failed; see {log_file}")
    return seconds


def measure(dataset: synth.DataSet, nodes: int, associations: int, work: Path) -> dict:
    recreate_database()
    root = Path(tempfile.mkdtemp(prefix=f"nodes{nodes}-", dir=work))
    started = [Node(f"n{i}", root, workers=2 // nodes) for i in range(1, nodes + 1)]
    try:
        started[0].manage("setuppacs")
        for node in started:
            node.start()
        time.sleep(2)  # every worker serves the shared socket
        seconds = send_split(dataset, [node.port for node in started], associations, root / "storescu.log")
        [(stored,)] = sql("SELECT count(*) FROM pacsone_instance", DATABASE_URL.replace("postgres://", "postgresql://"))
    finally:
        for node in started:
            node.stop()
    if stored != dataset.count:
        raise RuntimeError(f"{stored} of {dataset.count} instances stored; see {root}")
    shutil.rmtree(root, ignore_errors=True)
    return {"nodes": nodes, "workers_per_node": 2 // nodes, "associations": associations, "instances": dataset.count,
            "seconds": round(seconds, 2), "instances_per_second": round(dataset.count / seconds, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SET.slices} images instead of {FULL_SET.slices}")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--associations", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        sql("SELECT 1")
    except Exception as error:
        print(f"PostgreSQL at 127.0.0.1:5432 does not answer ({error}): two-node benchmark skipped")
        return 0
    OUT_DIR.mkdir(exist_ok=True)
    work = OUT_DIR / "work"
    work.mkdir(exist_ok=True)
    dataset = synth.ensure(QUICK_SET if args.quick else FULL_SET, OUT_DIR / "data")
    best = {}
    for _round in range(args.rounds):
        for nodes in (1, 2):
            result = measure(dataset, nodes, args.associations, work)
            if nodes not in best or result["seconds"] < best[nodes]["seconds"]:
                best[nodes] = result
    ratio = best[2]["instances_per_second"] / best[1]["instances_per_second"]
    print(f"Ingest on PostgreSQL, {dataset.count} CT images ({dataset.total_bytes // dataset.count} bytes each), "
          f"{args.associations} associations, best of {args.rounds}; {os.cpu_count()} CPU cores")
    print("| nodes | SCP workers per node | seconds | instances/s |")
    print("|---|---|---|---|")
    for nodes in (1, 2):
        r = best[nodes]
        print(f"| {nodes} | {r['workers_per_node']} | {r['seconds']} | {r['instances_per_second']} |")
    print(f"two nodes / one node: {ratio:.2f}")
    (OUT_DIR / "nodes.json").write_text(json.dumps({"results": list(best.values()), "ratio": round(ratio, 2),
                                                    "cpu_cores": os.cpu_count()}, indent=1))
    sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
