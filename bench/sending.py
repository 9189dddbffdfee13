"""Sending a data set with dcmtk's storescu over one or several associations, timed.

Each association is one storescu process (one association per process); with several, the
file list is cut into contiguous parts (so each part is mostly one study, as when several
modalities send at once) and all processes start together. The wall time runs from starting
the first process to the exit of the last, and includes storescu's own start-up.
"""

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from synth import DataSet, split_evenly

CALLING_AE = "BENCH"
# dcmtk's tools, not pynetdicom's Python apps of the same names that an activated venv puts first.
DCMTK_PATH = "/usr/local/bin:/usr/bin"


def dcmtk_tool(name: str) -> str:
    """The absolute path of a dcmtk program (`storescu`, `echoscu`), or raise if it is missing."""
    path = shutil.which(name, path=DCMTK_PATH)
    if path is None:
        raise FileNotFoundError(f"dcmtk's {name} is not in {DCMTK_PATH} (Debian: apt-get install dcmtk)")
    return path


@dataclass
class SendResult:
    seconds: float
    failed_processes: int  # storescu processes that exited non-zero

    @property
    def ok(self) -> bool:
        return self.failed_processes == 0


def storescu_command(called_ae: str, port: int, paths: list[Path]) -> list[str]:
    # +sd +r +sp: scan folders recursively for *.dcm files (not the manifest); -nh: keep going
    # after a failed C-STORE (the count check afterwards reports it).
    return [dcmtk_tool("storescu"), "-aet", CALLING_AE, "-aec", called_ae, "-nh", "+sd", "+r", "+sp", "*.dcm",
            "127.0.0.1", str(port), *map(str, paths)]


def split_files(files: list[Path], parts: int) -> list[list[Path]]:
    chunks, start = [], 0
    for size in split_evenly(len(files), parts):
        chunks.append(files[start:start + size])
        start += size
    return chunks


def send(dataset: DataSet, called_ae: str, port: int, associations: int, log_file: Path) -> SendResult:
    if associations == 1:
        path_lists = [[dataset.folder]]
    else:
        path_lists = split_files(dataset.files, associations)
    env = dict(os.environ, TCP_NODELAY="1")  # Debian's dcmtk leaves Nagle on without it
    with open(log_file, "w") as log:
        start = time.perf_counter()
        processes = [
            subprocess.Popen(storescu_command(called_ae, port, paths), env=env,
                             stdout=log, stderr=subprocess.STDOUT)
            for paths in path_lists
        ]
        codes = [p.wait() for p in processes]
        seconds = time.perf_counter() - start
    return SendResult(seconds, sum(1 for code in codes if code != 0))
