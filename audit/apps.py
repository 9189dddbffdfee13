from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The HIPAA system journal (issue 5): one `record(...)` call, append-only, hash-chained."""

    name = "audit"
    verbose_name = "System journal"
