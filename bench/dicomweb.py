"""DICOMweb benchmark: QIDO-RS study searches at a large index and WADO-RS retrieve of one
100-instance CT study, ours side by side with Orthanc and its DICOMweb plugin (Debian's
`orthanc-dicomweb`), over real HTTP.

Ours: a fresh SQLite data folder with --studies synthetic studies (bench/synthetic_index.py,
rows only: QIDO never reads files) and the CT study stored through the ingest path, served by
`manage.py runpacs --only web` (gunicorn), a token of a user with View and Download. Orthanc:
its own configuration and ports, --orthanc-studies studies of one small image each (stored
with storescu, which takes a while per study) made to the same pattern, and the same CT study.

QIDO: median and p95 of --repeat searches after two warm-ups (patient name prefix, patient ID,
one day). Wildcards go unencoded: Orthanc's plugin does not decode `%2A`. WADO-RS: instances/s
of one whole-study retrieve, `transfer-syntax=*` (files as stored), best of three. OHIF: time to
first image of the CT study in headless Chromium, the same OHIF files against each server
(bench/ohif_first_image.py), median of --ohif-runs fresh browser contexts.

    .venv/bin/python bench/dicomweb.py [--studies N] [--orthanc-studies N] [--repeat N] [--skip-orthanc]
                                       [--ohif-runs N]
"""

import argparse
import json
import os
import shutil
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

import ohif_first_image  # noqa: E402
import servers  # noqa: E402
import synth  # noqa: E402
from qr import CT_STUDY, DCMTK_ENV, orthanc_files  # noqa: E402
from sending import dcmtk_tool  # noqa: E402
from web import percentile  # noqa: E402

OUT_DIR = BENCH_DIR / "out"
LOG_DIR = OUT_DIR / "logs"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
RETRIEVE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
BENCH_PASSWORD = "bench-password-9-not-used"
SHOTS = ROOT / "test-artifacts"


def ohif_folder() -> Path | None:
    folder = Path(os.environ.get("PACS_OHIF_DIR") or ROOT / "var" / "ohif")
    return folder if (folder / "index.html").is_file() else None


def searches(orthanc: bool) -> list[tuple[str, str]]:
    one = 4242 if not orthanc else 424
    return [("patient name prefix SMI*", "PatientName=SMI*"), ("patient ID exact", f"PatientID=SYN{one:08d}"),
            ("one day", "StudyDate=20200115")]


def get(url: str, headers: dict, accept: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={**headers, "Accept": accept})
    with opener.open(request, timeout=600) as response:
        return response.read()


def measure(root: str, headers: dict, study_uid: str, repeat: int, orthanc: bool) -> dict:
    results = {}
    for label, query in searches(orthanc):
        url = f"{root}/studies?{query}&limit=100"
        for _ in range(2):
            get(url, headers, "application/dicom+json")
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            answers = json.loads(get(url, headers, "application/dicom+json") or b"[]")
            times.append((time.perf_counter() - started) * 1000)
        results[label] = {"median_ms": statistics.median(times), "p95_ms": percentile(times, 0.95),
                          "answers": len(answers)}
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        body = get(f"{root}/studies/{study_uid}", headers, RETRIEVE_ACCEPT)
        seconds = time.perf_counter() - started
        best = max(best, CT_STUDY.slices / seconds)
    results["wado"] = {"instances_per_s": best, "megabytes": len(body) / 1e6}
    return results


def wait_for_http(url: str, process: subprocess.Popen, log_file: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped; see {log_file}")
        try:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer; see {log_file}")


def ours(studies: int, repeat: int, ohif_runs: int) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="dwbench-", dir=OUT_DIR))
    os.environ.update(PACS_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="pacsone.settings",
                      PACS_LOG_LEVEL="WARNING", PACS_TASKS_SYNC="true")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import User
    from accounts.tokens import issue_token
    from pacsone.ingest import Origin, ingest_file
    from synthetic_index import populate

    call_command("migrate", verbosity=0)
    counts = populate(studies, progress=lambda m: print(f"  [ours] {m}", file=sys.stderr, flush=True))
    ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
    for path in ct.files:
        if not ingest_file(path, Origin("import")).outcome.accepted:
            raise RuntimeError(f"could not ingest {path}")
    from pydicom import dcmread

    study_uid = dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID
    user = User.objects.create_user("bench", password=BENCH_PASSWORD, privileges=["view", "download"])
    key = issue_token(user, "bench")[1]
    connections.close_all()
    port = servers.free_port()
    log_file = LOG_DIR / "dicomweb-ours.log"
    env = {**os.environ, "PACS_WEB_PORT": str(port), "PACS_TASKS_SYNC": "false"}
    with open(log_file, "w") as log:
        server = subprocess.Popen([str(servers.PYTHON), "manage.py", "runpacs", "--only", "web"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", server, log_file)
        measured = measure(f"http://127.0.0.1:{port}/dicomweb", {"Authorization": f"Token {key}"}, study_uid,
                           repeat, orthanc=False)
        if ohif_runs and ohif_folder():
            base = f"http://127.0.0.1:{port}"

            def log_in(page):
                page.goto(f"{base}/accounts/login/")
                page.fill("#id_username", "bench")
                page.fill("#id_password", BENCH_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")

            measured["ohif"] = ohif_first_image.time_to_first_image(
                f"{base}/viewer/viewer?StudyInstanceUIDs={study_uid}", login=log_in, runs=ohif_runs,
                screenshot=SHOTS / "bench-ohif-ours.png")
    finally:
        servers.stop_process(server)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"target": "ours (SQLite)", "studies": counts["studies"], **measured}


class OrthancWithDicomWeb(servers.OrthancServer):
    def start(self) -> None:
        original = servers.orthanc_config

        def with_plugin(folder, dicom_port, http_port):
            config = original(folder, dicom_port, http_port)
            config["Plugins"] = [DICOMWEB_PLUGIN]
            config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/"}
            return config

        servers.orthanc_config = with_plugin
        try:
            super().start()
        finally:
            servers.orthanc_config = original


def orthanc(studies: int, repeat: int, ohif_runs: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="dwbench-orthanc-", dir=OUT_DIR))
    try:
        orthanc_files(work / "small", studies)
        ct = synth.ensure(CT_STUDY, OUT_DIR / "data")
        with OrthancWithDicomWeb(work, LOG_DIR, "dicomweb") as server:
            for folder in (work / "small", ct.folder):
                subprocess.run([dcmtk_tool("storescu"), "+sd", "+r", "+sp", "*.dcm", "-aec", server.ae_title,
                                "127.0.0.1", str(server.port), str(folder)], env=DCMTK_ENV, check=True,
                               capture_output=True)
            from pydicom import dcmread

            study_uid = dcmread(ct.files[0], stop_before_pixels=True).StudyInstanceUID
            root = f"http://127.0.0.1:{server.http_port}/dicom-web"
            measured = measure(root, {}, study_uid, repeat, orthanc=True)
            if ohif_runs and ohif_folder():
                static, port = ohif_first_image.serve_ohif(ohif_folder(), ohif_first_image.orthanc_config_js(root))
                try:
                    measured["ohif"] = ohif_first_image.time_to_first_image(
                        f"http://127.0.0.1:{port}/viewer?StudyInstanceUIDs={study_uid}", runs=ohif_runs,
                        web_security=False, screenshot=SHOTS / "bench-ohif-orthanc.png")
                finally:
                    static.shutdown()
        return {"target": "Orthanc + DICOMweb plugin", "studies": studies + 1, **measured}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs: list[dict], repeat: int) -> None:
    print(f"\nQIDO-RS study searches, median / p95 ms over {repeat} runs (limit=100), and WADO-RS retrieve of "
          f"one {CT_STUDY.slices}-instance CT study (transfer-syntax=*, best of 3)")
    labels = [label for label, _ in searches(False)]
    print(f"{'target':28} {'studies':>8} " + " ".join(f"{label[:22]:>24}" for label in labels) + f" {'WADO inst/s':>12}")
    for run in runs:
        cells = [f"{run[label]['median_ms']:7.1f} / {run[label]['p95_ms']:7.1f}" for label in labels]
        print(f"{run['target']:28} {run['studies']:>8} " + " ".join(f"{cell:>24}" for cell in cells)
              + f" {run['wado']['instances_per_s']:12.1f}")
    print(f"\nOHIF time to first image of the {CT_STUDY.slices}-slice CT ({CT_STUDY.size}x{CT_STUDY.size}), headless "
          "Chromium, median of fresh contexts: first frame answered / image shown")
    for run in runs:
        ohif = run.get("ohif")
        if ohif:
            frame = f"{ohif['first_frame_s']:.2f} s" if ohif["first_frame_s"] is not None else "-"
            print(f"{run['target']:28} {frame:>10} / {ohif['first_image_s']:.2f} s")
        else:
            print(f"{run['target']:28} not measured (OHIF not installed, or --ohif-runs 0)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--orthanc-studies", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--ohif-runs", type=int, default=3)
    args = parser.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    SHOTS.mkdir(exist_ok=True)
    runs = []
    if not args.skip_orthanc and os.path.exists(servers.ORTHANC_BINARY) and os.path.exists(DICOMWEB_PLUGIN):
        runs.append(orthanc(args.orthanc_studies, args.repeat, args.ohif_runs))
    runs.append(ours(args.studies, args.repeat, args.ohif_runs))
    report(runs, args.repeat)
    (OUT_DIR / "dicomweb.json").write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
