"""Archive-wide figures: what `archivestats`, /healthz and the dashboards report."""

from django.db.models import Sum

from .models import Instance, Patient, Series, Study


def archive_stats() -> dict[str, int]:
    return {
        "patients": Patient.objects.count(),
        "studies": Study.objects.count(),
        "series": Series.objects.count(),
        "instances": Instance.objects.count(),
        "bytes": Instance.objects.aggregate(total=Sum("file_size"))["total"] or 0,
    }
