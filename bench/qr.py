"""Query/Retrieve benchmark (`make bench`, after the storage and web benchmarks).

C-FIND latency at a large index (default 100,000 studies / 1,000,000 instances of synthetic
rows, bench/synthetic_index.py), on SQLite and on MariaDB, for the queries of issue 4:
patient name prefix, patient ID exact, accession exact, one day, modality + date range, and the
IMAGE level of one series. Each is timed (a) with dcmtk's findscu, the whole process as a
workstation sees it, and (b) on one open pynetdicom association; median and p95 over --repeat
runs after two warm-ups. Then C-MOVE (movescu to a local dcmtk storescp) and C-GET (getscu) of
one 100-instance CT study: instances/s, best of three.

Orthanc (/usr/sbin/Orthanc, SQLite, its defaults) runs the same with --orthanc-studies studies
of one small image each (stored with storescu first; Orthanc indexes what it stores) and the
same CT study.

Our server runs as in production: `manage.py runpacs --only dicom` on the populated data
folder / database. Targets: selective queries p95 <= 50 ms with findscu; C-MOVE and C-GET at
least Orthanc's instances/s.

    .venv/bin/python bench/qr.py [--studies N] [--repeat N] [--orthanc-studies N] [--skip-mariadb] [--skip-orthanc]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(ROOT), str(BENCH_DIR)]

import servers  # noqa: E402
import synth  # noqa: E402
from sending import dcmtk_tool  # noqa: E402
from web import mariadb_reachable, percentile  # noqa: E402

OUT_DIR = BENCH_DIR / "out"
LOG_DIR = OUT_DIR / "logs"
MARIADB_URL = "mysql://root@127.0.0.1:3306/pacsone_qrbench"
TARGET_SELECTIVE_P95_MS = 50
CT_STUDY = synth.DataSetSpec("ct", 100, 1, 512)
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
RETURN_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyInstanceUID"]


def queries(uid_of_study, orthanc: bool) -> list[tuple[str, bool, list[str]]]:
    """(label, selective, keys). The synthetic index's values (bench/synthetic_index.py); Orthanc
    holds fewer studies made to the same pattern (see orthanc_files)."""
    one = 4242 if not orthanc else 424
    return [
        ("patient name prefix SMI*", False, ["QueryRetrieveLevel=STUDY", "PatientName=SMI*"]),
        ("patient ID exact", True, ["QueryRetrieveLevel=STUDY", f"PatientID=SYN{one:08d}"]),
        ("accession exact", True, ["QueryRetrieveLevel=STUDY", f"AccessionNumber=ACC{one:09d}"]),
        ("study date, one day", True, ["QueryRetrieveLevel=STUDY", "StudyDate=20200101"]),
        ("modality MR + date range (1 month)", False, ["QueryRetrieveLevel=STUDY", "ModalitiesInStudy=MR",
                                                       "StudyDate=20200101-20200131"]),
        ("IMAGE level of one series", True, ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={uid_of_study(one)}",
                                             f"SeriesInstanceUID={uid_of_study(one)}.1", "SOPInstanceUID",
                                             "InstanceNumber"]),
    ]


def with_return_keys(keys: list[str]) -> list[str]:
    if keys[0].endswith("IMAGE"):
        return keys
    asked = {k.split("=")[0] for k in keys}
    return keys + [k for k in RETURN_KEYS if k not in asked]


def time_findscu(ae_title: str, port: int, keys: list[str], repeat: int) -> list[float]:
    args = [dcmtk_tool("findscu"), "-S", "-aet", "BENCHFIND", "-aec", ae_title]
    for key in keys:
        args += ["-k", key]
    args += ["127.0.0.1", str(port)]
    times = []
    for i in range(repeat + 2):
        t0 = time.perf_counter()
        result = subprocess.run(args, env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = (time.perf_counter() - t0) * 1000
        if result.returncode != 0:
            raise RuntimeError(f"findscu failed: {result.stderr[-500:]}")
        if i >= 2:
            times.append(elapsed)
    return times


def time_association(ae_title: str, port: int, keys: list[str], repeat: int) -> tuple[list[float], int]:
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    def no_delay(event):  # as dcmtk with TCP_NODELAY=1: no Nagle stalls on the client side
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    ds = Dataset()
    for key in keys:
        keyword, _, value = key.partition("=")
        setattr(ds, keyword, value)
    ae = AE(ae_title="BENCHFIND")
    ae.add_requested_context(FIND)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)])
    if not assoc.is_established:
        raise RuntimeError("no association for C-FIND")
    times, answers = [], 0
    try:
        for i in range(repeat + 2):
            t0 = time.perf_counter()
            statuses = [status.get("Status") for status, _ in assoc.send_c_find(ds, FIND)]
            elapsed = (time.perf_counter() - t0) * 1000
            if not statuses or statuses[-1] != 0:
                raise RuntimeError(f"C-FIND ended with {statuses[-1:]}")
            answers = len(statuses) - 1
            if i >= 2:
                times.append(elapsed)
    finally:
        assoc.release()
    return times, answers


def time_retrieves(ae_title: str, port: int, study_uid: str, work: Path) -> dict:
    """movescu and getscu of one study, best of three: instances/s."""
    rates = {}
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    for kind in ("C-MOVE", "C-GET"):
        best = 0.0
        for attempt in range(3):
            folder = work / f"{kind}-{attempt}"
            folder.mkdir(parents=True)
            if kind == "C-MOVE":
                args = [dcmtk_tool("movescu"), "-S", "-aet", "BENCHMOVE", "-aec", ae_title, "-aem", "STORESCP", *keys]
            else:
                args = [dcmtk_tool("getscu"), "-S", "-aet", "BENCHGET", "-aec", ae_title, "-od", str(folder), *keys]
            for old in (work / "storescp").iterdir():  # the same instances again: same names
                old.unlink()
            t0 = time.perf_counter()
            result = subprocess.run([*args, "127.0.0.1", str(port)], env=DCMTK_ENV, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            received = count_files(work / "storescp" if kind == "C-MOVE" else folder)
            if result.returncode != 0 or received != CT_STUDY.slices:
                raise RuntimeError(f"{kind} delivered {received} of {CT_STUDY.slices}: {result.stderr[-500:]}")
            best = max(best, received / elapsed)
            shutil.rmtree(folder)
        rates[kind] = best
    return rates


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file()) if folder.exists() else 0


def start_storescp(folder: Path) -> tuple[subprocess.Popen, int]:
    folder.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    process = subprocess.Popen([dcmtk_tool("storescp"), "-aet", "STORESCP", "-od", str(folder), str(port)],
                               env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    servers.wait_for_echo("STORESCP", port, process, LOG_DIR / "qr-storescp.log")
    return process, port


def measure(ae_title: str, port: int, uid_of_study, study_uid: str, repeat: int, work: Path, orthanc=False) -> dict:
    results = []
    for label, selective, keys in queries(uid_of_study, orthanc):
        keys = with_return_keys(keys)
        per_process = time_findscu(ae_title, port, keys, repeat)
        try:
            on_association, answers = time_association(ae_title, port, keys, repeat)
        except RuntimeError as error:  # reported in the table, the other measurements go on
            print(f"    {label}: on one association: {error}", file=sys.stderr, flush=True)
            on_association, answers = [float("nan")], -1
        results.append({"label": label, "selective": selective, "answers": answers,
                        "findscu_median_ms": statistics.median(per_process),
                        "findscu_p95_ms": percentile(per_process, 0.95),
                        "assoc_median_ms": statistics.median(on_association),
                        "assoc_p95_ms": percentile(on_association, 0.95)})
        print(f"    {label}: {answers} answers, findscu median {results[-1]['findscu_median_ms']:.1f} ms",
              file=sys.stderr, flush=True)
    return {"queries": results, "retrieve": time_retrieves(ae_title, port, study_uid, work)}


# --- Ours ------------------------------------------------------------------------------------------------


def inner(backend: str, studies: int, repeat: int) -> dict:
    """Runs in a child process: one backend, a fresh database, populated, then served by runpacs."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"qrbench-{backend}-", dir=OUT_DIR))
    env = {"PACS_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "pacsone.settings",
           "PACS_LOG_LEVEL": "WARNING", "PACS_TASKS_SYNC": "true"}
    os.environ.update(env)
    if backend == "mariadb":
        os.environ["DATABASE_URL"] = MARIADB_URL
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "-e", "DROP DATABASE IF EXISTS pacsone_qrbench; "
                        "CREATE DATABASE pacsone_qrbench CHARACTER SET utf8mb4"], check=True)
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    from pacsone.ingest import Origin, ingest_file
    from pacsone.models import RemoteAE
    from synthetic_index import populate, uid

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    counts = populate(studies, progress=lambda m: print(f"  [{backend}] {m}", file=sys.stderr, flush=True))
    populate_seconds = time.perf_counter() - started
    ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
    for path in ct.files:
        if not ingest_file(path, Origin("import")).outcome.accepted:
            raise RuntimeError(f"could not ingest {path}")
    from pydicom import dcmread

    ct_study_uid = dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID
    work = data_dir / "work"
    storescp, storescp_port = start_storescp(work / "storescp")
    RemoteAE.objects.create(ae_title="STORESCP", host="127.0.0.1", port=storescp_port)
    for calling in ("BENCHFIND", "BENCHMOVE", "BENCHGET"):  # only registered AEs may query (README "DICOM access")
        RemoteAE.objects.get_or_create(ae_title=calling, defaults={"host": "127.0.0.1", "port": 104})
    from django.db import connections

    connections.close_all()
    port = servers.free_port()
    server_env = {**os.environ, "PACS_DICOM_PORT": str(port), "PACS_AE_TITLE": "PACSONE", "PACS_TASKS_SYNC": "false"}
    log_file = LOG_DIR / f"qr-ours-{backend}.log"
    with open(log_file, "w") as log:
        server = subprocess.Popen([str(servers.PYTHON), "manage.py", "runpacs", "--only", "dicom"], cwd=ROOT,
                                  env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        servers.wait_for_echo("PACSONE", port, server, log_file)
        time.sleep(2)  # every SCP worker up
        measured = measure("PACSONE", port, lambda s: uid(1, s), ct_study_uid, repeat, work)
    finally:
        servers.stop_process(server)
        servers.stop_process(storescp)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"target": f"ours ({backend})", "studies": counts["studies"], "instances": counts["instances"],
            "populate_seconds": populate_seconds, **measured}


# --- Orthanc ------------------------------------------------------------------------------------------------


def orthanc_files(folder: Path, studies: int) -> list[Path]:
    """One small CT image per study, with the synthetic index's patterns of IDs, names and dates."""
    import datetime
    import random

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from synthetic_index import DAYS, FIRST_DAY, FIRST_NAMES, LAST_NAMES, MODALITIES, uid

    rng = random.Random(1137)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for s in range(studies):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = uid(1, s) + ".1.1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(1, s), uid(1, s) + ".1"
        ds.PatientID = f"SYN{s:08d}"
        ds.PatientName = f"{rng.choice(LAST_NAMES)}^{rng.choice(FIRST_NAMES)}"
        ds.StudyDate = (FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS))).strftime("%Y%m%d")
        ds.StudyTime, ds.AccessionNumber, ds.Modality, ds.InstanceNumber = "101500", f"ACC{s:09d}", rng.choice(MODALITIES), 1
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = 0, 1, "MONOCHROME2"
        ds.PixelData = bytes(128)
        path = folder / f"{s}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def orthanc_run(studies: int, repeat: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="qrbench-orthanc-", dir=OUT_DIR))
    try:
        small = orthanc_files(work / "small", studies)
        ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
        storescp, storescp_port = start_storescp(work / "storescp")
        with servers.OrthancServer(work, LOG_DIR, "qr") as orthanc:
            for folder in (work / "small", ct.folder):
                result = subprocess.run([dcmtk_tool("storescu"), "+sd", "+r", "+sp", "*.dcm", "-aec", orthanc.ae_title, "127.0.0.1",
                                         str(orthanc.port), str(folder)], env=DCMTK_ENV, capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"storescu to Orthanc failed: {result.stderr[-500:]}")
            # Orthanc serves C-FIND/C-MOVE/C-GET to the modalities it knows: the benchmark's
            # clients, and storescp as the move destination.
            for name in ("STORESCP", "BENCHFIND", "BENCHMOVE", "BENCHGET"):
                port = storescp_port if name == "STORESCP" else 104
                add_orthanc_modality(orthanc.http_port, name, port)
            from pydicom import dcmread

            ct_study_uid = dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID
            from synthetic_index import uid

            measured = measure(orthanc.ae_title, orthanc.port, lambda s: uid(1, s), ct_study_uid, repeat, work,
                               orthanc=True)
        servers.stop_process(storescp)
        return {"target": "Orthanc", "studies": len(small) + 1, "instances": len(small) + ct.count, **measured}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def add_orthanc_modality(http_port: int, ae_title: str, port: int) -> None:
    body = json.dumps({"AET": ae_title, "Host": "127.0.0.1", "Port": port}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/modalities/{ae_title}", data=body, method="PUT")
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30).read()


# --- Report ---------------------------------------------------------------------------------------------------


def report(runs: list[dict], repeat: int) -> bool:
    print(f"\nC-FIND latency, median / p95 ms over {repeat} runs (findscu: whole process; assoc: one open "
          f"association). Target: selective queries p95 <= {TARGET_SELECTIVE_P95_MS} ms with findscu.")
    for run in runs:
        print(f"\n{run['target']}: {run['studies']:,} studies, {run['instances']:,} instances")
        print("| query | answers | findscu median | findscu p95 | assoc median | assoc p95 |")
        print("|---|---|---|---|---|---|")
        for q in run["queries"]:
            flag = " (!)" if q["selective"] and run["target"].startswith("ours") and \
                q["findscu_p95_ms"] > TARGET_SELECTIVE_P95_MS else ""
            print(f"| {q['label']} | {q['answers']} | {q['findscu_median_ms']:.1f} | {q['findscu_p95_ms']:.1f}{flag} | "
                  f"{q['assoc_median_ms']:.1f} | {q['assoc_p95_ms']:.1f} |")
    print(f"\nRetrieve of one {CT_STUDY.slices}-instance CT study (512x512), instances/s, best of 3")
    print("| target | C-MOVE to storescp | C-GET |")
    print("|---|---|---|")
    for run in runs:
        print(f"| {run['target']} | {run['retrieve']['C-MOVE']:.0f} | {run['retrieve']['C-GET']:.0f} |")
    orthanc = next((r for r in runs if r["target"] == "Orthanc"), None)
    if orthanc:
        for run in runs:
            if run is not orthanc:
                ratio = {k: run["retrieve"][k] / orthanc["retrieve"][k] for k in ("C-MOVE", "C-GET")}
                print(f"{run['target']} / Orthanc: C-MOVE {ratio['C-MOVE']:.2f}x, C-GET {ratio['C-GET']:.2f}x")
    return not any(q["selective"] and q["findscu_p95_ms"] > TARGET_SELECTIVE_P95_MS
                   for run in runs if run["target"].startswith("ours") for q in run["queries"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--orthanc-studies", type=int, default=20_000)
    parser.add_argument("--skip-mariadb", action="store_true")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if args.inner:
        print(json.dumps(inner(args.inner, args.studies, args.repeat)))
        return 0
    runs = []
    backends = ["sqlite"] + ([] if args.skip_mariadb or not mariadb_reachable() else ["mariadb"])
    for backend in backends:
        print(f"== Q/R benchmark on {backend}: building {args.studies:,} studies", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--inner", backend, "--studies", str(args.studies),
                              "--repeat", str(args.repeat)], stdout=subprocess.PIPE, text=True)
        if out.returncode != 0:
            print(f"!!! FAILED on {backend}", file=sys.stderr)
            return 1
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if not args.skip_orthanc and Path(servers.ORTHANC_BINARY).exists():
        print(f"== Q/R benchmark on Orthanc: {args.orthanc_studies:,} studies", file=sys.stderr, flush=True)
        runs.append(orthanc_run(args.orthanc_studies, args.repeat))
    (OUT_DIR / "qr-results.json").write_text(json.dumps(runs, indent=2))
    ok = report(runs, args.repeat)
    print("every selective query within the target" if ok else "(!) marks a selective query above the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
