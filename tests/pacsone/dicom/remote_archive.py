"""dcmtk's dcmqrscp as a remote archive (the peer of our SCU, remote search and sync tests)."""

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pacsone.models import RemoteAE
from tests.helpers import dcmtk_program, free_port, make_file
from tests.pacsone.dicom.test_dcmtk_interop import DCMTK_ENV, wait_for_port

CONFIG = """NetworkTCPPort = {port}
MaxPDUSize = 65536
MaxAssociations = 16

HostTable BEGIN
pacsone = ({our_ae}, 127.0.0.1, {our_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
REMOTE {db} RW (500, 1024mb) ANY
AETable END
"""


@dataclass
class RemoteArchive:
    ae: RemoteAE
    folder: Path
    process: subprocess.Popen

    def add(self, *files: Path) -> None:
        """Index files into the remote archive (as if they had been stored there)."""
        result = subprocess.run([dcmtk_program("dcmqridx"), str(self.folder / "db"), *map(str, files)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    def add_study(self, study_uid: str, instances: int = 2, **attributes) -> list[Path]:
        files = [make_file(self.folder / "source", f"{study_uid}-{i}.dcm", study_uid=study_uid,
                           series_uid=study_uid + ".1", sop_uid=f"{study_uid}.1.{i + 1}", InstanceNumber=i + 1,
                           **attributes) for i in range(instances)]
        self.add(*files)
        return files

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def start_remote_archive(folder: Path, our_port: int, our_ae: str = "PACSONE") -> RemoteArchive:
    """dcmqrscp on a free port that knows us as a move destination, registered as REMOTE."""
    (folder / "db").mkdir(parents=True)
    port = free_port()
    config = folder / "dcmqrscp.cfg"
    config.write_text(CONFIG.format(port=port, our_ae=our_ae, our_port=our_port, db=folder / "db"))
    process = subprocess.Popen([dcmtk_program("dcmqrscp"), "-c", str(config), str(port)], env=DCMTK_ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    ae, _ = RemoteAE.objects.update_or_create(
        ae_title="REMOTE", defaults={"host": "127.0.0.1", "port": port, "is_queryable": True})
    wait_for_echo(ae)
    return RemoteArchive(ae, folder, process)


def wait_for_echo(ae: RemoteAE, timeout: float = 10.0) -> None:
    """dcmqrscp may listen a moment before it serves (after wait_for_port's probe connection,
    which it takes for a failed association, it is briefly not listening): wait for a C-ECHO."""
    from pacsone.dicom import scu

    deadline = time.monotonic() + timeout
    while True:
        try:
            scu.echo(ae)
            return
        except scu.ScuError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
