from django.apps import AppConfig


class RoutingConfig(AppConfig):
    """Routing rules, forward jobs, storage locations, purge watermarks and job status."""

    name = "routing"
    verbose_name = "Routing and storage"
