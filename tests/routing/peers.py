"""dcmtk's storescp as a routing destination that counts what it receives: each received file
is logged by `--exec-on-reception`, so an instance received twice shows twice (the file itself
would just be overwritten), and `-v` logs each association."""

import collections
import socket
import subprocess
import time
from pathlib import Path

from pacsone.models import RemoteAE
from tests.helpers import dcmtk_program, free_port

DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}


class StoreScp:
    def __init__(self, folder: Path, ae_title: str = "STORESCP", port: int | None = None, options: tuple = ()):
        self.folder = folder
        self.ae_title = ae_title
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.options = list(options)  # e.g. "+xa": accept compressed transfer syntaxes too
        self.program = dcmtk_program("storescp")  # skips (or fails under PACS_REQUIRE_PEERS=1) without dcmtk
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "received.log"
        self.output = folder / "storescp.out"

    def register(self) -> RemoteAE:
        remote, _ = RemoteAE.objects.update_or_create(ae_title=self.ae_title,
                                                      defaults={"host": "127.0.0.1", "port": self.port})
        return remote

    def start(self) -> "StoreScp":
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [self.program, "-v", *self.options, "-aet", self.ae_title, "-od", str(self.folder),
                 "-xcr", f"echo #f >> {self.log}", str(self.port)],
                env=DCMTK_ENV, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "storescp exited early"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"storescp does not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def received(self, settle: float = 0.3) -> collections.Counter:
        """SOP Instance UID -> times received (the reception commands run just after each file)."""
        time.sleep(settle)
        lines = self.log.read_text().split() if self.log.exists() else []
        return collections.Counter(line.split(".", 1)[1] for line in lines if "." in line)

    def files(self) -> dict[str, Path]:
        """SOP Instance UID -> the file storescp wrote."""
        return {path.name.split(".", 1)[1]: path for path in self.folder.iterdir()
                if path.is_file() and path.suffix not in (".log", ".out")}

    def associations(self) -> int:
        return self.output.read_text(errors="replace").count("Association Acknowledged") if self.output.exists() else 0
