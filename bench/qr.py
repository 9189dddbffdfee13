"""Query/Retrieve benchmark (`make bench`, after the storage and web benchmarks).

C-FIND latency at a large index (default 100,000 studies / 1,000,000 instances of synthetic
rows, bench/synthetic_index.py), on SQLite, MariaDB and PostgreSQL, for the queries of issue 4:
patient name prefix, patient ID exact, accession exact, one day, modality + date range, and the
IMAGE level of one series. Each is timed (a) with dcmtk's findscu, the whole process as a
workstation sees it, and (b) on one open pynetdicom association; median and p95 over --repeat
runs after two warm-ups. Then C-MOVE (movescu to a local dcmtk storescp) and C-GET (getscu) of
one 100-instance CT study: instances/s, best of three.

Orthanc (/usr/sbin/Orthanc, its defaults) runs the same with --orthanc-studies studies of one
small image each (stored with storescu first; Orthanc indexes what it stores) and the same CT
study: on its SQLite index, on MariaDB through Debian's orthanc-mysql index plugin when ours
runs on MariaDB, and on PostgreSQL through Debian's orthanc-postgresql index plugin when ours
runs on PostgreSQL. Each of ours is compared with Orthanc on the matching index
(servers.orthanc_index_for: MariaDB with Orthanc's SQLite where orthanc-mysql is not installed).

Our server runs as in production: servers.OurServer (`setuppacs` on a fresh data folder and
database, then `runpacs --only dicom`), the index filled in between. On PostgreSQL the tables
are ANALYZEd after the bulk load, as autovacuum would do within a minute. Targets: selective
queries p95 <= 50 ms with findscu; C-MOVE and C-GET at least Orthanc's instances/s.

    .venv/bin/python bench/qr.py [--studies N] [--repeat N] [--orthanc-studies N]
                                 [--skip-mariadb] [--skip-postgresql] [--skip-orthanc]
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
from synthetic_index import uid  # noqa: E402
from web import percentile  # noqa: E402

OUT_DIR = BENCH_DIR / "out"
LOG_DIR = OUT_DIR / "logs"
DATABASE = "pacsone_qrbench"  # ours, on MariaDB and PostgreSQL
ORTHANC_DATABASE = "pacsone_qrbench_orthanc"  # Orthanc's MySQL or PostgreSQL index
TARGET_SELECTIVE_P95_MS = 50
CT_STUDY = synth.DataSetSpec("ct", 100, 1, 512)
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
RETURN_KEYS = ["PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyInstanceUID"]


def queries(one: int) -> list[tuple[str, bool, list[str]]]:
    """(label, selective, keys). The synthetic index's values (bench/synthetic_index.py); Orthanc
    holds fewer studies made to the same pattern (see orthanc_files). `one`: the study (and
    patient) number the exact queries ask for (probe_study)."""
    return [
        ("patient name prefix SMI*", False, ["QueryRetrieveLevel=STUDY", "PatientName=SMI*"]),
        ("patient ID exact", True, ["QueryRetrieveLevel=STUDY", f"PatientID=SYN{one:08d}"]),
        ("accession exact", True, ["QueryRetrieveLevel=STUDY", f"AccessionNumber=ACC{one:09d}"]),
        ("study date, one day", True, ["QueryRetrieveLevel=STUDY", "StudyDate=20200101"]),
        ("modality MR + date range (1 month)", False, ["QueryRetrieveLevel=STUDY", "ModalitiesInStudy=MR",
                                                       "StudyDate=20200101-20200131"]),
        ("IMAGE level of one series", True, ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={uid(1, one)}",
                                             f"SeriesInstanceUID={uid(1, one)}.1", "SOPInstanceUID",
                                             "InstanceNumber"]),
    ]


def probe_study(studies: int, orthanc: bool) -> int:
    """The study the exact queries ask for: 4242 (ours) or 424 (Orthanc) as ever, or one in the
    middle when fewer studies are held (short runs), so that they still find it."""
    return min(424 if orthanc else 4242, studies // 2)


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


def measure(ae_title: str, port: int, one: int, study_uid: str, repeat: int, work: Path) -> dict:
    results = []
    for label, selective, keys in queries(one):
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
    """Runs in a child process (Django set up here on the server's database): our server on a
    fresh data folder and database, filled by fill_index, then served by runpacs."""
    work = Path(tempfile.mkdtemp(prefix=f"qrbench-{backend}-", dir=OUT_DIR))
    storescp, storescp_port = start_storescp(work / "storescp")
    filled = {}

    def fill(server: servers.OurServer) -> None:
        filled.update(fill_index(server, studies, storescp_port))

    try:
        with servers.OurServer(backend, work, LOG_DIR, f"qr-{backend}", database=DATABASE, fill=fill) as server:
            measured = measure(server.ae_title, server.port, probe_study(studies, orthanc=False),
                               filled["ct_study_uid"], repeat, work)
    finally:
        servers.stop_process(storescp)
        shutil.rmtree(work, ignore_errors=True)
    return {"target": f"ours ({backend})", "ours": True, "backend": backend, "studies": filled["studies"],
            "instances": filled["instances"], "populate_seconds": filled["populate_seconds"], **measured}


def fill_index(server: servers.OurServer, studies: int, storescp_port: int) -> dict:
    """In this process, through Django on the server's data folder and database: the synthetic
    index, one CT study ingested from its files (for C-MOVE/C-GET), the benchmark's AEs."""
    os.environ.update(server.env(), DJANGO_SETTINGS_MODULE="pacsone.settings", PACS_LOG_LEVEL="WARNING",
                      PACS_TASKS_SYNC="true")
    import django

    django.setup()
    from django.db import connection, connections
    from pydicom import dcmread

    from pacsone.ingest import Origin, ingest_file
    from pacsone.models import RemoteAE
    from synthetic_index import populate

    started = time.perf_counter()
    counts = populate(studies, progress=lambda m: print(f"  [{server.backend}] {m}", file=sys.stderr, flush=True))
    if server.backend == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    populate_seconds = time.perf_counter() - started
    ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
    for path in ct.files:
        if not ingest_file(path, Origin("import")).outcome.accepted:
            raise RuntimeError(f"could not ingest {path}")
    RemoteAE.objects.create(ae_title="STORESCP", host="127.0.0.1", port=storescp_port)
    for calling in ("BENCHFIND", "BENCHMOVE", "BENCHGET"):  # only registered AEs may query (README "DICOM access")
        RemoteAE.objects.get_or_create(ae_title=calling, defaults={"host": "127.0.0.1", "port": 104})
    connections.close_all()
    return {"studies": counts["studies"], "instances": counts["instances"], "populate_seconds": populate_seconds,
            "ct_study_uid": dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID}


# --- Orthanc ------------------------------------------------------------------------------------------------


def orthanc_files(folder: Path, studies: int) -> list[Path]:
    """One small CT image per study, with the synthetic index's patterns of IDs, names and dates."""
    import datetime
    import random

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from synthetic_index import DAYS, FIRST_DAY, FIRST_NAMES, LAST_NAMES, MODALITIES

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


def orthanc_run(index: str, small: Path, studies: int, repeat: int) -> dict:
    """Orthanc on its `index` ("sqlite", "mysql" or "postgresql"), given the `studies` small
    studies of folder `small` and the CT study by storescu, then measured."""
    work = Path(tempfile.mkdtemp(prefix=f"qrbench-orthanc-{index}-", dir=OUT_DIR))
    ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
    storescp, storescp_port = start_storescp(work / "storescp")
    try:
        with servers.OrthancServer(work, LOG_DIR, f"qr-{index}", index=index, database=ORTHANC_DATABASE) as orthanc:
            for folder in (small, ct.folder):
                result = subprocess.run([dcmtk_tool("storescu"), "+sd", "+r", "+sp", "*.dcm", "-aec", orthanc.ae_title,
                                         "127.0.0.1", str(orthanc.port), str(folder)],
                                        env=DCMTK_ENV, capture_output=True, text=True)
                if result.returncode != 0:
                    raise RuntimeError(f"storescu to Orthanc failed: {result.stderr[-500:]}")
            # Orthanc serves C-FIND/C-MOVE/C-GET to the modalities it knows: the benchmark's
            # clients, and storescp as the move destination.
            for name in ("STORESCP", "BENCHFIND", "BENCHMOVE", "BENCHGET"):
                port = storescp_port if name == "STORESCP" else 104
                add_orthanc_modality(orthanc.http_port, name, port)
            from pydicom import dcmread

            ct_study_uid = dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID
            measured = measure(orthanc.ae_title, orthanc.port, probe_study(studies, orthanc=True), ct_study_uid,
                               repeat, work)
            stored = orthanc.rest("/statistics")
    finally:
        servers.stop_process(storescp)
        shutil.rmtree(work, ignore_errors=True)
    return {"target": f"Orthanc ({index})", "ours": False, "backend": index,
            "studies": stored["CountStudies"], "instances": stored["CountInstances"], **measured}


def add_orthanc_modality(http_port: int, ae_title: str, port: int) -> None:
    body = json.dumps({"AET": ae_title, "Host": "127.0.0.1", "Port": port}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/modalities/{ae_title}", data=body, method="PUT")
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30).read()


# --- Report ---------------------------------------------------------------------------------------------------


def matching_orthanc(run: dict, runs: list[dict]) -> dict | None:
    """The Orthanc run one of ours is compared with: on the matching index (servers.orthanc_index_for)."""
    index = servers.orthanc_index_for(run["backend"])
    return next((r for r in runs if not r["ours"] and r["backend"] == index), None)


def print_latencies(run: dict) -> None:
    """One target's C-FIND table: answers, findscu and one-association median and p95."""
    print(f"\n{run['target']}: {run['studies']:,} studies, {run['instances']:,} instances")
    print("| query | answers | findscu median | findscu p95 | assoc median | assoc p95 |")
    print("|---|---|---|---|---|---|")
    for q in run["queries"]:
        flag = " (!)" if run["ours"] and q["selective"] and q["findscu_p95_ms"] > TARGET_SELECTIVE_P95_MS else ""
        print(f"| {q['label']} | {q['answers']} | {q['findscu_median_ms']:.1f} | {q['findscu_p95_ms']:.1f}{flag} | "
              f"{q['assoc_median_ms']:.1f} | {q['assoc_p95_ms']:.1f} |")


def print_comparison(runs: list[dict], key: str, title: str) -> None:
    """One figure of every target side by side, and ours over Orthanc's on the matching index."""
    ours = [run for run in runs if run["ours"]]
    pairs = [(run, matching_orthanc(run, runs)) for run in ours]
    pairs = [(run, orthanc) for run, orthanc in pairs if orthanc]
    print(f"\n{title}; ours/Orthanc: ours over Orthanc's on the matching index (below 1: ours answers sooner)")
    print("| query | " + " | ".join(run["target"] for run in runs) + "".join(
        f" | {run['target']} / {orthanc['target']}" for run, orthanc in pairs) + " |")
    print("|---|" + "---|" * (len(runs) + len(pairs)))
    for i, q in enumerate(runs[0]["queries"]):
        cells = [f"{run['queries'][i][key]:.1f}" for run in runs]
        cells += [f"{run['queries'][i][key] / orthanc['queries'][i][key]:.2f}" for run, orthanc in pairs]
        print(f"| {q['label']} | " + " | ".join(cells) + " |")


def print_retrieves(runs: list[dict]) -> None:
    print(f"\nRetrieve of one {CT_STUDY.slices}-instance CT study (512x512), instances/s, best of 3")
    print("| target | C-MOVE to storescp | C-GET |")
    print("|---|---|---|")
    for run in runs:
        print(f"| {run['target']} | {run['retrieve']['C-MOVE']:.0f} | {run['retrieve']['C-GET']:.0f} |")
    for run in (run for run in runs if run["ours"]):
        orthanc = matching_orthanc(run, runs)
        if orthanc:
            ratio = {k: run["retrieve"][k] / orthanc["retrieve"][k] for k in ("C-MOVE", "C-GET")}
            print(f"{run['target']} / {orthanc['target']}: C-MOVE {ratio['C-MOVE']:.2f}x, C-GET {ratio['C-GET']:.2f}x")


def report(runs: list[dict], repeat: int) -> bool:
    """Print every table; True if every selective query of ours is within the target."""
    print(f"\nC-FIND latency, median / p95 ms over {repeat} runs (findscu: whole process; assoc: one open "
          f"association). Target: selective queries p95 <= {TARGET_SELECTIVE_P95_MS} ms with findscu.")
    for run in runs:
        print_latencies(run)
    print_comparison(runs, "findscu_median_ms", "C-FIND findscu median ms")
    print_comparison(runs, "assoc_median_ms", "C-FIND median ms on one association")
    print_retrieves(runs)
    return not any(q["selective"] and q["findscu_p95_ms"] > TARGET_SELECTIVE_P95_MS
                   for run in runs if run["ours"] for q in run["queries"])


def run_ours(backend: str, studies: int, repeat: int) -> dict | None:
    """inner() in a child process (its own Django on its own database); None if it failed."""
    print(f"== Q/R benchmark on ours ({backend}): building {studies:,} studies", file=sys.stderr, flush=True)
    out = subprocess.run([sys.executable, __file__, "--inner", backend, "--studies", str(studies),
                          "--repeat", str(repeat)], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--orthanc-studies", type=int, default=20_000)
    parser.add_argument("--skip-mariadb", action="store_true", help="neither ours nor Orthanc on MariaDB")
    parser.add_argument("--skip-postgresql", action="store_true", help="neither ours nor Orthanc on PostgreSQL")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if args.inner:
        print(json.dumps(inner(args.inner, args.studies, args.repeat)))
        return 0
    backends = servers.available_backends({b for b in ("mariadb", "postgresql") if getattr(args, f"skip_{b}")})
    runs = []
    for backend in backends:
        run = run_ours(backend, args.studies, args.repeat)
        if run is None:
            print(f"!!! FAILED on {backend}", file=sys.stderr)
            return 1
        runs.append(run)
    indexes = [] if args.skip_orthanc or not Path(servers.ORTHANC_BINARY).exists() else \
        servers.available_orthanc_indexes(backends)
    if indexes:
        small = Path(tempfile.mkdtemp(prefix="qrbench-orthanc-files-", dir=OUT_DIR))
        try:
            orthanc_files(small, args.orthanc_studies)
            for index in indexes:
                print(f"== Q/R benchmark on Orthanc ({index}): {args.orthanc_studies:,} studies", file=sys.stderr,
                      flush=True)
                runs.append(orthanc_run(index, small, args.orthanc_studies, args.repeat))
        finally:
            shutil.rmtree(small, ignore_errors=True)
    (OUT_DIR / "qr-results.json").write_text(json.dumps(runs, indent=2))
    ok = report(runs, args.repeat)
    print("every selective query within the target" if ok else "(!) marks a selective query above the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
