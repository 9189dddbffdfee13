from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .stats import archive_stats


@login_required
def home(request):
    """The start page: what the archive holds and where it listens."""
    return render(
        request,
        "pacsone/home.html",
        {
            "stats": archive_stats(),
            "dicom_instances": settings.PACS_DICOM_INSTANCES,
        },
    )
