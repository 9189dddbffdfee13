from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.root import ensure_root
from pacsone import storage


class Command(BaseCommand):
    help = "Prepare a data folder: migrate the database, collect static files, create root. Idempotent."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
        call_command("collectstatic", interactive=False, verbosity=0)
        location = storage.default_location()
        password = ensure_root()
        if password:
            line = "=" * 64
            self.stdout.write(
                f"{line}\n  Created the administrator 'root' with the password:\n\n      {password}\n\n"
                f"  It is shown only this once. Change it after logging in, or set\n"
                f"  PACS_ROOT_PASSWORD before the first start.\n{line}"
            )
        self.stdout.write(f"Database ready; storing images in {location.path}")
