import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pacsone.backup import BackupError, restore
from pacsone.humanize import count


class Command(BaseCommand):
    help = ("Restore a backup made by `manage.py backup` into this server's empty database, with the stored "
            "files under --storage-dir (a new or empty folder; default PACS_STORAGE_DIR). Run `verifystorage` "
            "afterwards, and put the journal key back before `verifyjournal`.")

    def add_arguments(self, parser):
        parser.add_argument("src", type=Path)
        parser.add_argument("--storage-dir", type=Path, default=None,
                            help="Where the stored files go (one sub-folder per storage location).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, src, storage_dir, no_progress, **options):
        with tqdm(unit="file", disable=no_progress, file=sys.stderr) as bar:
            try:
                result = restore(src, storage_dir or settings.STORAGE_DIR, progress=bar.update)
            except BackupError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(f"Restored the index, {count(result.files, 'file', 'files')} ({result.bytes} bytes) and "
                          f"{count(result.attachments, 'attachment', 'attachments')}. Check them with: manage.py verifystorage")
