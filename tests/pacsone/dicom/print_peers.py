"""Print SCPs for the print tests.

- `Dcmprscp`: dcmtk's `dcmprscp` with a config of our own in the test's folder: one printer
  (Basic Grayscale Print Management; dcmtk 3.6.7's print SCP offers no colour service). It
  stores each film session (Stored Print, SP_*.dcm) and each image it was sent (Hardcopy
  Grayscale Image, HG_*.dcm) in its database folder, which the tests read.
- `ColourPrintSCP`: a pynetdicom print SCP offering Basic Color (and Grayscale) Print
  Management, for the colour path dcmprscp lacks; it keeps every Image Box N-SET it receives
  and the order of the DIMSE requests.
"""

import socket
import subprocess
import threading
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicColorPrintManagementMeta,
    BasicFilmBox,
    BasicGrayscalePrintManagementMeta,
    Verification,
)

from tests.helpers import dcmtk_program, free_port

CONFIG = r"""[[GENERAL]]
[PRINT]
Directory = spool
DeletePrintJobs = false
[DATABASE]
Directory = database
[[COMMUNICATION]]
[{ae}]
Aetitle = {ae}
Description = print SCP of a test
Hostname = localhost
Port = {port}
Type = LOCALPRINTER
DisplayFormat = 1,1\1,2\2,2\3,3\4,4
FilmSizeID = 8INX10IN\10INX12IN\11INX14IN\14INX14IN\14INX17IN
MediumType = PAPER\CLEAR FILM\BLUE FILM
FilmDestination = MAGAZINE\PROCESSOR
MagnificationType = REPLICATE\BILINEAR\CUBIC\NONE
MaxDensity = 320
MinDensity = 20
Supports12Bit = true
SupportsPresentationLUT = false
SupportsImageSize = true
ImplicitOnly = false
MaxPDU = 32768
"""


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class Dcmprscp:
    def __init__(self, folder: Path, ae_title: str = "DCMPRSCP"):
        self.program = dcmtk_program("dcmprscp")  # skips (or fails under PACS_REQUIRE_PEERS=1) without dcmtk
        self.folder, self.ae_title, self.port = folder, ae_title, free_port()
        for name in ("database", "spool"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        config = folder / "dcmprscp.cfg"
        config.write_text(CONFIG.format(ae=ae_title, port=self.port))
        self.log = open(folder / "dcmprscp.log", "wb")
        self.process = subprocess.Popen([self.program, "-c", str(config), "-p", ae_title, "-v"], cwd=folder,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def stored(self, prefix: str) -> list[Path]:
        """What it stored: "HG" hardcopy grayscale images, "SP" stored print (film sessions)."""
        return sorted((self.folder / "database").glob(f"{prefix}_*.dcm"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class ColourPrintSCP:
    def __init__(self, ae_title: str = "COLOURPRINT"):
        self.ae_title, self.port = ae_title, free_port()
        self.stall_print = 0  # the N-ACTION (1-based) answered only after `stall_seconds`
        self.stall_seconds = 0.0
        self.requests: list[str] = []
        self.images: list[Dataset] = []  # the Image Box N-SET modification lists
        self.layouts: list[str] = []
        self.lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.require_called_aet = True  # another called AE title: A-ASSOCIATE-RJ (permanent)
        for context in (BasicColorPrintManagementMeta, BasicGrayscalePrintManagementMeta, Verification):
            ae.add_supported_context(context)
        handlers = [(evt.EVT_N_CREATE, self._create), (evt.EVT_N_SET, self._set), (evt.EVT_N_ACTION, self._action),
                    (evt.EVT_N_DELETE, self._delete), (evt.EVT_C_ECHO, lambda event: 0x0000)]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    def forget(self) -> None:
        """Forget what was received (before a job's retry is checked on its own)."""
        with self.lock:
            self.requests, self.images, self.layouts = [], [], []

    def _note(self, text: str) -> None:
        with self.lock:
            self.requests.append(text)

    def _create(self, event):
        attributes = event.attribute_list
        if event.request.AffectedSOPClassUID != BasicFilmBox:
            self._note("create session")
            return 0x0000, attributes
        self._note("create film box")
        self.layouts.append(str(attributes.ImageDisplayFormat))
        columns, rows = (int(n) for n in str(attributes.ImageDisplayFormat).split("\\")[1].split(","))
        colour = event.context.abstract_syntax == BasicColorPrintManagementMeta
        boxes = []
        for _ in range(columns * rows):
            box = Dataset()
            box.ReferencedSOPClassUID = "1.2.840.10008.5.1.1.4.1" if colour else "1.2.840.10008.5.1.1.4"
            box.ReferencedSOPInstanceUID = generate_uid()
            boxes.append(box)
        attributes.ReferencedImageBoxSequence = boxes
        return 0x0000, attributes

    def _set(self, event):
        self._note("set image box")
        with self.lock:
            self.images.append(event.modification_list)
        return 0x0000, None

    def _action(self, event):
        self._note("print")
        if self.requests.count("print") == self.stall_print:
            time.sleep(self.stall_seconds)
        return 0x0000, None

    def _delete(self, event):
        self._note("delete")
        return 0x0000

    def stop(self) -> None:
        self.server.shutdown()
