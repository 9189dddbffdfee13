import getpass
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pacsone.humanize import count
from pacsone.importer import count_candidates, import_paths
from pacsone.ingest import Origin, Outcome


class Command(BaseCommand):
    help = ("Import DICOM files, folders (walked recursively), zip files and DICOM media (a DICOMDIR, a folder "
            "holding one, a zip of a CD: the files the DICOMDIR references) into the archive. Exits non-zero "
            "when nothing could be imported or a file could not be stored.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, **options):
        paths = options["paths"]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"not found: {', '.join(missing)}")
        origin = Origin("import", username=getpass.getuser())
        total = count_candidates(paths)
        with tqdm(total=total, unit="file", disable=options["no_progress"], file=sys.stderr) as bar:
            summary = import_paths(paths, origin, on_progress=bar.update)
        counts = summary.counts
        self.stdout.write(
            f"Imported {count(summary.total, 'file', 'files')}: "
            f"{counts[Outcome.STORED]} stored, {counts[Outcome.REPLACED]} replaced, "
            f"{counts[Outcome.IGNORED]} skipped as duplicates, "
            f"{counts[Outcome.UNREADABLE]} skipped as not DICOM, "
            f"{counts[Outcome.INVALID]} rejected, {counts[Outcome.FAILED]} failed"
            + (f", {summary.not_on_media} listed in a DICOMDIR but missing from the media" if summary.not_on_media else "")
            + f"; {summary.bytes_stored / 1e6:.1f} MB stored."
        )
        for problem in summary.problems:
            self.stdout.write(f"  {problem}")
        if counts[Outcome.FAILED]:
            raise CommandError(f"{count(counts[Outcome.FAILED], 'file', 'files')} could not be stored; see above")
        if summary.accepted == 0:
            raise CommandError("nothing could be imported; see above")
