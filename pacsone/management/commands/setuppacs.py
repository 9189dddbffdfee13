from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from accounts.root import ensure_root
from pacsone import storage
from pacsone.schedules import ensure_schedules


def create_database_if_missing() -> None:
    """MariaDB/MySQL and PostgreSQL: create the database named in DATABASE_URL, so `make run`
    just works. (SQLite creates its file by itself.)"""
    if connection.vendor not in ("mysql", "postgresql"):
        return
    name = connection.settings_dict["NAME"]
    try:
        with connection._nodb_cursor() as cursor:
            if connection.vendor == "mysql":
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
                return
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                # UTF-8, and the C collation: code point order, so a prefix range or LIKE 'ABC%'
                # is answered from an ordinary index (upper() still follows the server's ctype).
                cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)} "
                               "ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0")
    except DatabaseError as exc:
        raise CommandError(f"could not create the database {name!r}: {exc}. Create it, or grant CREATE.")


class Command(BaseCommand):
    help = "Prepare a data folder: migrate the database, collect static files, create root. Idempotent."

    def handle(self, *args, **options):
        create_database_if_missing()
        call_command("migrate", interactive=False, verbosity=0)
        settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
        call_command("collectstatic", interactive=False, verbosity=0)
        location = storage.default_location()
        ensure_schedules()  # every django-q2 schedule, created or corrected
        password = ensure_root()
        if password:
            line = "=" * 64
            self.stdout.write(
                f"{line}\n  Created the administrator 'root' with the password:\n\n      {password}\n\n"
                f"  It is shown only this once: log in at /accounts/login/ with it and choose\n"
                f"  your own (or set PACS_ROOT_PASSWORD before the first start).\n{line}"
            )
        self.stdout.write(f"Database ready; storing images in {location.path}")
