"""HL7 benchmark (`make bench`): ADT^A08 messages per second over one MLLP connection, each
sent after the previous one's ACK (round trips), against a trivial MLLP echo server in the
same run as the ceiling (what the client, the loopback and one Python process's socket handling
cost without any work).

Our listener runs as in production: `manage.py runpacs --only hl7` in a fresh data folder on
SQLite (`manage.py setuppacs` first; one patient imported so that every A08 changes a real
patient row and writes its journal entry). The echo server answers every frame with a fixed ACK
from a separate process. Both are timed with the same client, after a warm-up; every ACK of ours
must be AA and the message log must hold every message, or the run fails (exit status 1).

    .venv/bin/python bench/hl7.py [--messages N] [--warmup N]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
START, END = b"\x0b", b"\x1c\r"
ECHO_ACK = b"\x0bMSH|^~\\&|ECHO||||20240101000000||ACK|1|P|2.5\rMSA|AA|1\r\x1c\r"
PATIENT_ID = "BENCH0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def a08(n: int) -> bytes:
    text = (f"MSH|^~\\&|RIS|HOSP|PACSONE|HOSP|20240105120000||ADT^A08^ADT_A01|B{n:08d}|P|2.5||||||UNICODE UTF-8\r"
            f"EVN|A08|20240105120000\r"
            f"PID|1||{PATIENT_ID}^^^HOSP^MR||BENCH^PATIENT^{n % 100:02d}||19700101|M\r"
            f"PV1|1|O\r")
    return START + text.encode() + END


def serve_echo(port: int) -> None:
    """The ceiling: answer each frame with a fixed ACK, nothing else (one connection at a time)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        with connection:
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                buffer += data
                while END in buffer:
                    _frame, _, buffer = buffer.partition(END)
                    connection.sendall(ECHO_ACK)


def round_trips(port: int, count: int, first: int = 0) -> tuple[float, list[bytes]]:
    """Seconds for `count` message/ACK round trips on one connection, and the ACKs."""
    acks = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        started = time.perf_counter()
        for n in range(first, first + count):
            sock.sendall(a08(n))
            while END not in buffer:
                data = sock.recv(65536)
                if not data:
                    raise RuntimeError(f"the server closed the connection after {len(acks)} ACK(s)")
                buffer += data
            frame, _, buffer = buffer.partition(END)
            acks.append(frame)
        return time.perf_counter() - started, acks


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed_patient(env: dict, folder: Path, log) -> None:
    """One stored image of the patient the A08s rename (so each one updates a real row)."""
    script = (
        "import sys; from pydicom.dataset import Dataset, FileMetaDataset; from pydicom.uid import "
        "ExplicitVRLittleEndian, generate_uid\n"
        "ds = Dataset(); ds.file_meta = FileMetaDataset()\n"
        "ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'\n"
        "ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()\n"
        "ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian\n"
        "ds.StudyInstanceUID = generate_uid(); ds.SeriesInstanceUID = generate_uid()\n"
        f"ds.PatientID = '{PATIENT_ID}'; ds.PatientName = 'BENCH^PATIENT'; ds.Modality = 'OT'\n"
        "ds.save_as(sys.argv[1], enforce_file_format=True)\n"
    )
    image = folder / "seed.dcm"
    subprocess.run([sys.executable, "-c", script, str(image)], check=True, env=env, stdout=log, stderr=log)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "importdicom", str(image)], check=True, env=env,
                   stdout=log, stderr=log)


def logged_applied(env: dict) -> int:
    code = "from hl7.models import Message; print(Message.objects.filter(status='applied').count())"
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", code], env=env,
                            capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.echo_server)
        return 0

    (OUT_DIR / "logs").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pacs-hl7-bench-"))
    results, failures = {}, []
    try:
        # The ceiling.
        echo_port = free_port()
        echo_log = OUT_DIR / "logs" / "hl7-echo.log"
        with open(echo_log, "wb") as log:
            echo = subprocess.Popen([sys.executable, __file__, "--echo-server", str(echo_port)], stdout=log, stderr=log)
        try:
            wait_for_port(echo_port, echo, echo_log)
            round_trips(echo_port, args.warmup)
            seconds, _ = round_trips(echo_port, args.messages)
            results["echo"] = {"messages": args.messages, "seconds": seconds, "per_second": args.messages / seconds}
        finally:
            stop(echo)

        # Our listener.
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(PACS_DATA_DIR=str(work / "data"), PACS_HL7_PORT=str(port), PYTHONUNBUFFERED="1",
                   DJANGO_SETTINGS_MODULE="pacsone.settings", PACS_ROOT_PASSWORD="bench-password-123")
        server_log = OUT_DIR / "logs" / "hl7-runpacs.log"
        with open(server_log, "wb") as log:
            subprocess.run([sys.executable, str(ROOT / "manage.py"), "setuppacs"], check=True, env=env,
                           stdout=log, stderr=log)
            seed_patient(env, work, log)
            server = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "runpacs", "--only", "hl7"], env=env,
                                      stdout=log, stderr=log, start_new_session=True)
        try:
            wait_for_port(port, server, server_log)
            _, warm_acks = round_trips(port, args.warmup, first=0)
            seconds, acks = round_trips(port, args.messages, first=args.warmup)
            refused = [ack for ack in warm_acks + acks if b"MSA|AA|" not in ack]
            if refused:
                failures.append(f"{len(refused)} message(s) not answered AA, e.g. {refused[0][:200]!r}")
            results["ours"] = {"messages": args.messages, "seconds": seconds, "per_second": args.messages / seconds}
        finally:
            stop(server)
        applied = logged_applied(env)
        if applied != args.warmup + args.messages:
            failures.append(f"the message log holds {applied} applied message(s), expected {args.warmup + args.messages}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nHL7 ADT^A08 over one MLLP connection (one message per ACK round trip)")
    print(f"{'target':<40} {'messages/s':>12} {'ms/message':>12}")
    for label, key in (("trivial MLLP echo server (ceiling)", "echo"), ("PacsOne listener (SQLite, journaled)", "ours")):
        if key in results:
            rate = results[key]["per_second"]
            print(f"{label:<40} {rate:>12.0f} {1000 / rate:>12.2f}")
    if "echo" in results and "ours" in results:
        print(f"ours / ceiling: {results['ours']['per_second'] / results['echo']['per_second']:.1%}")
    (OUT_DIR / "hl7.json").write_text(json.dumps({"results": results, "failures": failures}, indent=2))
    for failure in failures:
        print(f"!!! FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
