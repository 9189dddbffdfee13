from django.apps import AppConfig


class PacsoneConfig(AppConfig):
    name = "pacsone"
    verbose_name = "Archive"

    def ready(self):
        from django.conf import settings

        if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            from . import postgresql  # imports psycopg: only where it is installed

            postgresql.connect_signal()
