"""Work queued after ingest (django-q2), kept out of the association's critical path."""

import logging

from django.db.models import Count, Sum
from django_q.tasks import async_task

from .models import Instance, Series, Study

log = logging.getLogger(__name__)


def queue_after_ingest(study_pk: int) -> None:
    """Queue the follow-up of a study that received instances. A failure to queue loses nothing:
    the instances are stored, and the next ingest into the study queues it again."""
    try:
        async_task("pacsone.tasks.after_ingest", study_pk, task_name=f"after-ingest-{study_pk}")
    except Exception:
        log.exception("could not queue after_ingest study_pk=%s", study_pk)


def after_ingest(study_pk: int) -> None:
    """Refresh the study's summary columns (counts, size, modalities) used by study lists."""
    refresh_study_summary(study_pk)


def refresh_study_summary(study_pk: int) -> None:
    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return
    for series in Series.objects.filter(study=study).annotate(count=Count("instances")):
        if series.number_of_instances != series.count:
            Series.objects.filter(pk=series.pk).update(number_of_instances=series.count)
    totals = Instance.objects.filter(series__study=study).aggregate(count=Count("id"), size=Sum("file_size"))
    modalities = sorted(set(Series.objects.filter(study=study).values_list("modality", flat=True)) - {""})
    Study.objects.filter(pk=study_pk).update(
        number_of_series=Series.objects.filter(study=study).count(),
        number_of_instances=totals["count"] or 0,
        size_bytes=totals["size"] or 0,
        modalities_in_study="\\".join(modalities)[:64],
    )
