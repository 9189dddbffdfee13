from django.apps import AppConfig


class PacsoneConfig(AppConfig):
    name = "pacsone"
    verbose_name = "Archive"
