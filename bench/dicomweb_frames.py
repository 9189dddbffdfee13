"""WADO-RS frames from a large multi-frame instance: time, peak memory and bytes read from
storage to give one frame, as `pacsone.dicomweb.frames.frames()` does for `/frames/N`.

The instance: --frames frames of 512x512 16-bit pixels (500 by default: 262 MB), stored
through the ingest path into a fresh data folder, twice: uncompressed (Explicit VR Little
Endian) and RLE Lossless (each frame the same compressed bytes, so that making it is quick).
For each: frame 1 and the last frame, native (decoded) and as stored; best of --repeat, the
peak of Python's allocations (tracemalloc: numpy's arrays included) and the bytes read through
the storage interface.

    .venv/bin/python bench/dicomweb_frames.py [--frames N] [--repeat N]
"""

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(ROOT), str(BENCH_DIR)]
OUT_DIR = BENCH_DIR / "out"
SIZE = 512


def multiframe(frames: int, syntax: str, path: Path) -> Path:
    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.uid import RLELossless, generate_uid

    from tests.helpers import make_dataset, write_dataset

    ds = make_dataset(study_uid=generate_uid(), rows=SIZE, patient_id="FRAMES1")
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    frame = ((x * 7 + y * 3) % 4096).astype(np.int16)
    if syntax == "rle":
        ds.compress(RLELossless, frame, encoding_plugin="pydicom")
        [one] = generate_frames(ds.PixelData, number_of_frames=1)
        ds.PixelData = encapsulate([one] * frames, has_bot=True)
        ds.NumberOfFrames = frames
    else:
        ds.PixelData = np.tile(frame, (frames, 1, 1)).tobytes()
        ds.NumberOfFrames = frames
    return write_dataset(ds, path)


def measure(instance, number: int, as_stored: bool, repeat: int) -> dict:
    from pacsone.dicomweb import frames as frame_access
    from tests.helpers import CountingReader

    best = None
    for _ in range(repeat):
        CountingReader.total = 0
        tracemalloc.start()
        started = time.perf_counter()
        [frame] = frame_access.frames(instance, [number], as_stored)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if best is None or seconds < best["ms"] / 1000:
            best = {"ms": seconds * 1000, "peak_mb": peak / 1e6, "read_mb": CountingReader.total / 1e6,
                    "frame_bytes": len(frame.data)}
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="dwframes-", dir=OUT_DIR))
    os.environ.update(PACS_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="pacsone.settings",
                      PACS_LOG_LEVEL="WARNING", PACS_TASKS_SYNC="true")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    from pacsone import storage
    from tests.helpers import CountingReader, ingest_instance

    call_command("migrate", verbosity=0)
    opened = storage.open_stored
    storage.open_stored = lambda instance: io.BufferedReader(CountingReader(opened(instance)))
    rows = []
    try:
        for syntax in ("native", "rle"):
            instance = ingest_instance(multiframe(args.frames, syntax, data_dir / f"{syntax}.dcm"))
            for number in (1, args.frames):
                for as_stored in (False, True):
                    result = measure(instance, number, as_stored, args.repeat)
                    rows.append({"stored": syntax, "frame": number, "as_stored": as_stored,
                                 "file_mb": instance.file_size / 1e6, **result})
    finally:
        storage.open_stored = opened
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\nWADO-RS frames of a {args.frames}-frame {SIZE}x{SIZE} 16-bit instance (best of {args.repeat})")
    print(f"{'stored':8} {'file MB':>8} {'frame':>6} {'given':>10} {'ms':>9} {'peak MB':>9} {'read MB':>9}")
    for row in rows:
        given = "as stored" if row["as_stored"] else "native"
        print(f"{row['stored']:8} {row['file_mb']:8.1f} {row['frame']:>6} {given:>10} {row['ms']:9.1f} "
              f"{row['peak_mb']:9.2f} {row['read_mb']:9.2f}")
    (OUT_DIR / "dicomweb-frames.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
