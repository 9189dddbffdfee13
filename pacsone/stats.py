"""Archive-wide figures: what `archivestats`, /healthz and the dashboards report; and the
statistics of a period (the statistics page, /api/statistics/, the e-mailed reports).

Everything comes from the index, never from the stored files: aggregate queries (COUNT, SUM,
GROUP BY the local day or hour) that SQLite, MariaDB and PostgreSQL all run in plain SQL (see
LocalPart in pacsone/stats_days.py); days are then gathered into weeks (ISO, from Monday) and months. Days and hours are
those of the server's time zone (PACS_TIME_ZONE), summer time included.

Studies, series, instances and bytes are counted by the time their study was first received,
from the counts kept on each study's row (a study that received more images days later counts
them on its first day). Past days are read from the daily rollup (pacsone/stats_rollup.py),
today from the index. By modality counts series received in the period. A period's figures count what
is still in the index: a study purged or deleted since is gone from them (the journal keeps the
record of what happened).
"""

import datetime

from django.core.cache import cache
from django.db.models import Count, Sum

from . import stats_rollup
from .models import Patient, StorageLocation, Study
from .stats_days import Period, bucket_start

TOP = 20  # rows per breakdown (modality, AE, institution, physician); the rest are "others"
NONE_LABEL = "(none)"
REFUSED_ACTIONS = ("store", "import", "upload")
ARCHIVE_TOTALS_SECONDS = 60  # whole-archive totals are counted at most this often


def archive_stats() -> dict[str, int]:
    """The archive's totals, from the counts kept exact on each study's row (study_counts.py):
    one pass over the studies instead of over every instance."""
    totals = Study.objects.aggregate(studies=Count("*"), series=Sum("number_of_series"),
                                     instances=Sum("number_of_instances"), bytes=Sum("size_bytes"))
    return {"patients": Patient.objects.count(), **{key: value or 0 for key, value in totals.items()}}


def cached_archive_stats() -> dict[str, int]:
    """Whole-archive figures for the study list's summary bar and the statistics API; counted
    at most once a minute (the cache all web workers and nodes share)."""
    return cache.get_or_set("pacsone:archive-stats", archive_stats, ARCHIVE_TOTALS_SECONDS)


def forget_archive_stats() -> None:
    """After a delete, restore or purge: the totals are counted again at once."""
    cache.delete_many(["pacsone:archive-stats", "pacsone:indexed-bytes"])


def _indexed_bytes_by_location() -> dict[int, int]:
    return dict(Study.objects.values("storage_location").annotate(total=Sum("size_bytes")).order_by()
                .values_list("storage_location", "total"))


def _timeline(period: Period, by_day: dict[datetime.date, dict]) -> list[dict]:
    rows = {bucket: {"period": bucket, "studies": 0, "series": 0, "instances": 0, "bytes": 0}
            for bucket in period.buckets()}
    for day, measures in by_day.items():
        target = rows[bucket_start(day, period.by)]
        for key in target.keys() - {"period"}:
            target[key] += measures[key] or 0
    return list(rows.values())


def _top(labels: dict[str, dict], measures: tuple[str, ...], order: str) -> list[dict]:
    """The TOP largest labels by `order`, then one "others" row with the rest."""
    ranked = sorted(labels.items(), key=lambda item: (-(item[1][order] or 0), item[0]))
    rows = [{"label": label or NONE_LABEL, **{key: values[key] or 0 for key in measures}} for label, values in ranked[:TOP]]
    if len(ranked) > TOP:
        rest = ranked[TOP:]
        rows.append({"label": f"others ({len(rest)})", **{key: sum(values[key] or 0 for _, values in rest) for key in measures}})
    return rows


def storage_figures() -> list[dict]:
    """Per storage location: what the index says it holds, and the filesystem's used and free space."""
    from . import storage

    held = cache.get_or_set("pacsone:indexed-bytes", _indexed_bytes_by_location, ARCHIVE_TOTALS_SECONDS)
    rows = []
    for location in StorageLocation.objects.order_by("name"):
        row = {"location": location.name, "indexed_bytes": held.get(location.pk) or 0,
               "used_bytes": None, "free_bytes": None, "total_bytes": None, "problem": ""}
        try:
            usage = storage.usage(location)
            row.update(used_bytes=usage.used_bytes, free_bytes=usage.free_bytes, total_bytes=usage.total_bytes)
        except OSError as error:
            row["problem"] = error.strerror or str(error)
        rows.append(row)
    return rows


def _failures(start: datetime.datetime, end: datetime.datetime) -> dict:
    from audit.models import Entry
    from routing.models import Job

    failed_jobs = (Job.objects.filter(state=Job.State.FAILED, finished_at__gte=start, finished_at__lt=end)
                   .values("kind").annotate(count=Count("*")).order_by("-count", "kind"))
    refused = {row["ae_title"]: row for row in
               Entry.objects.filter(action__in=REFUSED_ACTIONS, outcome__in=("failure", "denied"),
                                    timestamp__gte=start, timestamp__lt=end)
               .values("ae_title").annotate(count=Count("*")).order_by()}
    return {
        "failed_jobs": [{"kind": Job.Kind(row["kind"]).label if row["kind"] in Job.Kind.values else row["kind"],
                         "count": row["count"]} for row in failed_jobs],
        "refused_stores": [dict(row, label="(web or API)") if row["label"] == NONE_LABEL else row
                           for row in _top(refused, ("count",), "count")],
    }


def period_figures(period: Period) -> dict:
    """Every figure of the statistics page for `period`."""
    start, end = period.bounds()
    by_day, breakdowns = stats_rollup.figures(period.first, period.last)
    timeline = _timeline(period, by_day)
    study_measures = ("studies", "instances", "bytes")
    failures = _failures(start, end)
    hours = breakdowns.get("hour", {})
    return {
        "period": period.as_dict(),
        "totals": {key: sum(row[key] for row in timeline) for key in ("studies", "series", "instances", "bytes")},
        "timeline": timeline,
        "by_modality": _top(breakdowns.get("modality", {}), ("series", "instances"), "instances"),
        "by_source_ae": _top(breakdowns.get("source_ae", {}), study_measures, "studies"),
        "by_institution": _top(breakdowns.get("institution", {}), study_measures, "studies"),
        "by_referring_physician": _top(breakdowns.get("physician", {}), study_measures, "studies"),
        "busiest_hours": [{"hour": hour, "instances": hours.get(f"{hour:02d}", {}).get("instances") or 0}
                          for hour in range(24)],
        "storage": storage_figures(),
        "failures": failures,
        "failed_jobs": sum(row["count"] for row in failures["failed_jobs"]),
        "refused_stores": sum(row["count"] for row in failures["refused_stores"]),
    }
