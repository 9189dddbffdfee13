"""A private Orthanc for interop tests: its own configuration, storage and index in a temp
folder, free ports, and our archive registered in its DicomModalities (as "pacs")."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from pacsone.models import RemoteAE
from tests.helpers import echo_status, free_port, orthanc_program


class Orthanc:
    ae_title = "ORTHANC"

    def __init__(self, folder: Path, our_port: int, our_ae_title: str = "PACSONE"):
        self.program = orthanc_program()  # skips (or fails under PACS_REQUIRE_PEERS=1) without Orthanc
        self.folder = folder
        self.port, self.http_port = free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = {
            "Name": "interop", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
            "DicomAet": self.ae_title, "DicomPort": self.port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
            "DicomCheckCalledAet": False, "DicomCheckModalityHost": False, "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True, "DicomModalities": {"pacs": [our_ae_title, "127.0.0.1", our_port]},
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Orthanc":
        (self.folder / "orthanc.json").write_text(json.dumps(self.config))
        with open(self.folder / "orthanc.log", "wb") as log:
            self.process = subprocess.Popen([self.program, "--verbose", str(self.folder / "orthanc.json")],
                                            cwd=self.folder, env=dict(os.environ, TCP_NODELAY="1"),
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            if echo_status(self.port, self.ae_title, timeout=2) == 0:
                return self
            time.sleep(0.2)
        raise AssertionError(f"Orthanc does not answer C-ECHO on {self.port}:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def log(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def register(self, **fields) -> RemoteAE:
        remote, _ = RemoteAE.objects.update_or_create(
            ae_title=self.ae_title, defaults={"host": "127.0.0.1", "port": self.port, **fields})
        return remote

    def rest(self, path: str, body: dict | bytes | None = None):
        """Orthanc's REST API (never through an HTTP proxy): GET, or POST with a JSON or raw body."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                         method="GET" if data is None else "POST")
        with opener.open(request, timeout=60) as response:
            return json.load(response)
