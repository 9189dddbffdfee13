"""Where one SCP worker spends its time while it receives a data set: py-spy, summarized.

py-spy samples every thread of the worker process (`--idle` keeps sleeping and waiting threads,
so the shares are of wall time, not only of CPU time) and writes "raw" collapsed stacks: one line
per distinct stack, `thread (tid): name;outermost frame;...;innermost frame COUNT`.

Over one association, the worker has one busy thread:
- the **association thread** (pacsone/dicom/net/acceptor.py, `AcceptedAssociation.serve`) reads the
  PDUs, writes each data set's fragments to a temp file, parses its header early, calls the
  ingest path (which syncs the file, its folder and the index) and sends the response.
The other threads (main thread, listening socket) only wait and are left out.

For each kind of thread the summary gives the share of its samples in which a function is
on the stack ("inclusive", wall time spent inside it and what it calls), and over both threads
the source lines most often found running or waiting ("self").
"""

import os
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PY_SPY = Path(os.environ.get("PY_SPY") or Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
SAMPLE_RATE = 200  # per second

# The frame that marks each kind of thread.
ROLES = {
    "association": ("AcceptedAssociation.serve",),
    "fsync": ("_worker",),
}
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass
class Profile:
    samples: dict[str, int] = field(default_factory=dict)  # per role, including "other"
    inclusive: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # role -> (function, share)
    self_lines: list[tuple[str, float]] = field(default_factory=list)  # (frame, share of busy samples)

    def as_dict(self) -> dict:
        return {"sample_rate": SAMPLE_RATE, "samples": self.samples, "inclusive": self.inclusive,
                "self_lines": self.self_lines}


class Recorder:
    """`with Recorder(pid, output):` samples the process until the block ends."""

    def __init__(self, pid: int, output: Path, log_file: Path):
        self.pid = pid
        self.output = output
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Recorder":
        command = [str(PY_SPY), "record", "--pid", str(self.pid), "--rate", str(SAMPLE_RATE),
                   "--idle", "--threads", "--format", "raw", "--output", str(self.output)]
        with open(self.log_file, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.0)  # let py-spy attach before the first C-STORE arrives
        if self.process.poll() is not None:
            raise RuntimeError(f"py-spy exited with {self.process.returncode}; see {self.log_file}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        self.process.wait(timeout=60)


# --- Reading py-spy's raw output ----------------------------------------------------------------------


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def role_of(frames: list[str]) -> str:
    for role, markers in ROLES.items():
        if any(frame.startswith(marker + " ") for frame in frames for marker in markers):
            return role
    return "other"


def short_frame(frame: str, with_line: bool) -> str:
    """'ingest_file (pacsone/ingest.py:93)' or without the line; site-packages paths shortened."""
    match = FRAME.match(frame)
    if not match:
        return frame
    where = match["file"].split("site-packages/")[-1]
    if with_line and match["line"]:
        where += f":{match['line']}"
    return f"{match['function']} ({where})"


def summarize(path: Path, top: int = 25) -> Profile:
    stacks = parse_raw(path)
    profile = Profile()
    per_role_total: Counter = Counter()
    per_role_functions: dict[str, Counter] = {role: Counter() for role in ROLES}
    self_lines: Counter = Counter()
    for frames, count in stacks:
        role = role_of(frames)
        per_role_total[role] += count
        if role == "other":
            continue
        code_frames = frames[1:]  # the first "frame" names the thread
        for function in {short_frame(f, with_line=False) for f in code_frames}:
            per_role_functions[role][function] += count
        if code_frames:
            self_lines[short_frame(code_frames[-1], with_line=True)] += count
    profile.samples = dict(per_role_total)
    for role, functions in per_role_functions.items():
        total = per_role_total[role]
        if not total:
            continue
        # Frames on (nearly) every stack, such as the thread's bootstrap, say nothing.
        ranked = [(f, n / total) for f, n in functions.most_common() if n / total < 0.99]
        profile.inclusive[role] = ranked[:top]
    busy = sum(per_role_total[role] for role in ROLES)
    if busy:
        profile.self_lines = [(f, n / busy) for f, n in self_lines.most_common(top)]
    return profile


def format_profile(profile: Profile, instances: int) -> str:
    """The summary as text; "ms/inst" is the share times the thread's wall time per instance."""
    lines = []
    for role, markers in ROLES.items():
        if role not in profile.inclusive:
            continue
        seconds = profile.samples.get(role, 0) / SAMPLE_RATE
        per_instance_ms = seconds * 1000 / instances
        lines.append(f"\n{role} thread ({' or '.join(markers)}): {seconds:.1f} s of wall time = {per_instance_ms:.2f} ms"
                     f" per instance; with the function on the stack:")
        lines.append(f"  {'share':>6}  {'ms/inst':>7}  function")
        lines += [f"  {share:6.1%}  {share * per_instance_ms:7.2f}  {function}"
                  for function, share in profile.inclusive[role]]
    lines.append("\nsource lines running or waiting most often (all of those threads together):")
    lines += [f"  {share:6.1%}  {frame}" for frame, share in profile.self_lines]
    return "\n".join(lines)
