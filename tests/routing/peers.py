"""dcmtk's storescp as a routing destination that counts what it receives: each received file
is logged by `--exec-on-reception`, so an instance received twice shows twice (the file itself
would just be overwritten), and `-v` logs each association. And a pynetdicom destination that
commits what it stored (Storage Commitment)."""

import collections
import socket
import subprocess
import threading
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

    def __enter__(self) -> "StoreScp":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

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


class CommitmentDestination:
    """A pynetdicom destination that stores (in memory) and commits: it answers N-ACTION, then
    reports on the same association (`report_on="same"`), on a new association to our SCP
    (`"new"`: `our_port` needed), or never (`"never"`). `fail` names SOP Instance UIDs it
    reports as failed (0x0112); `commitment=False` leaves the SOP class out of its contexts."""

    def __init__(self, ae_title: str = "COMMITSCP", report_on: str = "same", our_port: int | None = None,
                 fail: tuple = (), commitment: bool = True):
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import StorageCommitmentPushModel

        self.ae_title, self.report_on, self.our_port, self.fail = ae_title, report_on, our_port, set(fail)
        self.port = free_port()
        self.stored: list[str] = []
        self.actions: list[str] = []  # Transaction UIDs asked
        self.reported = threading.Event()
        self.go = threading.Event()  # a report on a new association waits for it (cleared: the test says when)
        self.go.set()
        ae = AE(ae_title=ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax)
        if commitment:
            ae.add_supported_context(StorageCommitmentPushModel)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=[
            (evt.EVT_C_STORE, self._on_store), (evt.EVT_N_ACTION, self._on_action)])

    def register(self) -> RemoteAE:
        remote, _ = RemoteAE.objects.update_or_create(
            ae_title=self.ae_title, defaults={"host": "127.0.0.1", "port": self.port, "requests_storage_commitment": True})
        return remote

    def stop(self) -> None:
        self.server.shutdown()

    def _on_store(self, event):
        self.stored.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def _on_action(self, event):
        request = event.action_information
        self.actions.append(str(request.TransactionUID))
        if self.report_on != "never":
            threading.Thread(target=self._report, args=(event.assoc, request), daemon=True).start()
        return 0x0000, None

    def _result(self, request):
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.TransactionUID = request.TransactionUID
        ds.ReferencedSOPSequence, ds.FailedSOPSequence = [], []
        for item in request.ReferencedSOPSequence:
            done = Dataset()
            done.ReferencedSOPClassUID = item.ReferencedSOPClassUID
            done.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
            if str(item.ReferencedSOPInstanceUID) in self.fail or str(item.ReferencedSOPInstanceUID) not in self.stored:
                done.FailureReason = 0x0112
                ds.FailedSOPSequence.append(done)
            else:
                ds.ReferencedSOPSequence.append(done)
        return ds, (2 if ds.FailedSOPSequence else 1)

    def _report(self, assoc, request) -> None:
        from pynetdicom import AE, build_role
        from pynetdicom.sop_class import StorageCommitmentPushModel

        result, event_type = self._result(request)
        time.sleep(0.1)  # after our N-ACTION-RSP went out
        if self.report_on == "same":
            status, _ = assoc.send_n_event_report(result, event_type, StorageCommitmentPushModel,
                                                  "1.2.840.10008.1.20.1.1")
        else:
            time.sleep(0.3)  # our association is released by now
            self.go.wait(30)
            ae = AE(ae_title=self.ae_title)
            ae.add_requested_context(StorageCommitmentPushModel)
            new = ae.associate("127.0.0.1", self.our_port, ae_title="PACSONE",
                               ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)])
            status, _ = new.send_n_event_report(result, event_type, StorageCommitmentPushModel,
                                                "1.2.840.10008.1.20.1.1")
            new.release()
        self.status = status.Status if status else None
        self.reported.set()
