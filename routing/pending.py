"""Studies with pending jobs: linked to a job (Job.studies) that is not finished (queued,
waiting for its window, or running). Purges, auto-purge and Change Storage leave them alone."""

from django.db.models import QuerySet

from pacsone.models import Study

from .models import Job


def studies_with_pending_jobs() -> QuerySet:
    return Study.objects.filter(jobs__state__in=Job.UNFINISHED).distinct()


def has_pending_jobs(study, excluding: Job | None = None) -> bool:
    jobs = Job.objects.filter(studies=study, state__in=Job.UNFINISHED)
    if excluding is not None:
        jobs = jobs.exclude(pk=excluding.pk)
    return jobs.exists()


def pending_among(studies) -> set[int]:
    """The primary keys of those of `studies` (a queryset or pks) that an unfinished job reads
    or changes (a forward waiting for its window, a retry, an export, a move)."""
    return set(Job.studies.through.objects.filter(study__in=studies, job__state__in=Job.UNFINISHED)
               .values_list("study_id", flat=True))
