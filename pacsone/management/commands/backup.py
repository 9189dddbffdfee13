import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pacsone.backup import BackupError, backup
from pacsone.humanize import count
from pacsone.models import Instance


class Command(BaseCommand):
    help = ("Back up the archive into DEST (a new or empty folder): a consistent snapshot of the index made "
            "by the database's own tool, the storage manifest, every stored file (checked against its "
            "SHA-256) and the note attachments. The journal key and secret key are not copied: keep them apart.")

    def add_arguments(self, parser):
        parser.add_argument("dest", type=Path)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, dest, no_progress, **options):
        with tqdm(total=Instance.objects.count(), unit="file", disable=no_progress, file=sys.stderr) as bar:
            try:
                result = backup(dest, progress=bar.update)
            except BackupError as error:
                raise CommandError(str(error)) from None
        for problem in result.problems:
            self.stderr.write(problem)
        self.stdout.write(f"Backed up the index, {count(result.files, 'file', 'files')} ({result.bytes} bytes) and "
                          f"{count(result.attachments, 'attachment', 'attachments')} into {dest}.")
        if result.problems:
            raise CommandError(f"{count(len(result.problems), 'file', 'files')} could not be backed up (listed above)")
