import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pacsone.verification import files_per_location, indexed_files_count, verify_storage
from ...humanize import count


class Command(BaseCommand):
    help = ("Check that every indexed DICOM file, in every storage location, is present and has its "
            "recorded SHA-256 checksum.")

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, **options):
        total = indexed_files_count()
        problems = 0
        with tqdm(total=total, unit="file", disable=options["no_progress"], file=sys.stderr) as bar:
            for problem in verify_storage(on_progress=bar.update):
                problems += 1
                uid = f" (SOP Instance UID {problem.sop_instance_uid})" if problem.sop_instance_uid else ""
                bar.write(f"{problem.problem}: {problem.path}{uid}")
        locations = ", ".join(f"{name}: {count}" for name, count in sorted(files_per_location().items()))
        self.stdout.write(f"Locations checked: {locations or 'none'}")
        if problems:
            raise CommandError(f"{count(problems, 'problem', 'problems')} among {count(total, 'indexed file', 'indexed files')}")
        self.stdout.write(f"All {count(total, 'indexed file', 'indexed files')} are present and intact.")
