"""Purge watermarks (DESIGN.md "Purge watermarks"; seed 004 "Automatically Purging Aged Archive
Directories", read in the usual sense): when more than a location's high mark (a percentage of
its filesystem's space) is in use, the studies stored there are purged oldest first, by date
received, until less than its low mark is in use. Studies under legal hold, within their
retention or with pending jobs are passed over (routing/retention.py).

`plan()` is the dry run; `purge()` carries out exactly the studies `plan()` lists, so the page
that shows a dry run shows what a run removes. The scheduled check (pacsone/schedules.py) calls
`check_watermarks()` every few minutes.
"""

import logging
from dataclasses import dataclass, field
from typing import Callable

from audit.journal import Action, record
from pacsone import storage
from pacsone.deletion import PurgeRefused, do_purge_study
from pacsone.humanize import count
from pacsone.models import Instance, StorageLocation, Study

from .pending import has_pending_jobs, pending_among
from .retention import Retention

log = logging.getLogger(__name__)

UsageFunction = Callable[[StorageLocation], storage.Usage]
WALK_CHUNK = 500
MAX_SKIPPED_LISTED = 200  # the dry run lists at most this many passed-over studies


@dataclass
class PlannedStudy:
    study: Study
    study_pk: int  # kept: a purged study's object loses its pk
    frees_bytes: int
    reason: str  # why this one: e.g. "received 2026-01-02 10:00, oldest not protected"


@dataclass
class SkippedStudy:
    study: Study
    reason: str  # why it stays: legal hold, retention, pending jobs


@dataclass
class PurgePlan:
    location: StorageLocation
    usage: storage.Usage | None
    to_free_bytes: int = 0
    studies: list[PlannedStudy] = field(default_factory=list)
    skipped: list[SkippedStudy] = field(default_factory=list)
    skipped_count: int = 0
    summary: str = ""

    @property
    def frees_bytes(self) -> int:
        return sum(planned.frees_bytes for planned in self.studies)

    @property
    def reaches_low_mark(self) -> bool:
        return self.frees_bytes >= self.to_free_bytes


def _location_bytes(study: Study, location: StorageLocation) -> int:
    """What removing the study frees in this location: its files there, each file once."""
    files = set(Instance.objects.filter(series__study=study, storage_location=location)
                .values_list("file_path", "file_size"))
    return sum(size for _path, size in files)


def plan(location: StorageLocation, usage_of: UsageFunction | None = None, now=None) -> PurgePlan:
    """The dry run: which studies a purge of `location` would remove now, and why. `usage_of`
    measures the location (storage.usage unless given: tests simulate it)."""
    usage_of = usage_of or storage.usage
    high, low = location.high_watermark, location.low_watermark
    if high is None or low is None:
        return PurgePlan(location, None, summary="No watermarks are set: this location is never purged.")
    usage = usage_of(location)
    if usage.percent_used <= high:
        return PurgePlan(location, usage, summary=f"{usage.percent_used:.1f}% in use, not above the high "
                                                  f"watermark of {high}%: nothing to purge.")
    # Below the low mark means strictly fewer used bytes than low% of the total.
    allowed_used = usage.total_bytes * low // 100 - 1
    result = PurgePlan(location, usage, to_free_bytes=max(usage.used_bytes - allowed_used, 0))
    retention = Retention(now)
    walk = Study.objects.filter(storage_location=location).select_related("patient").order_by("received_at", "pk")
    freed = 0
    for start in range(0, walk.count(), WALK_CHUNK):
        chunk = list(walk[start:start + WALK_CHUNK])
        pending = pending_among([study.pk for study in chunk])
        for study in chunk:
            why_not = retention.protected_because(study, pending)
            if why_not:
                result.skipped_count += 1
                if len(result.skipped) < MAX_SKIPPED_LISTED:
                    result.skipped.append(SkippedStudy(study, why_not))
                continue
            frees = _location_bytes(study, location)
            result.studies.append(PlannedStudy(study, study.pk, frees, f"oldest received not protected "
                                                             f"({study.received_at:%Y-%m-%d %H:%M} UTC)"))
            freed += frees
            if freed >= result.to_free_bytes:
                break
        if freed >= result.to_free_bytes:
            break
    result.summary = (f"{usage.percent_used:.1f}% in use, above the high watermark of {high}%: "
                      f"{count(len(result.studies), 'study', 'studies')} would free {freed} of the {result.to_free_bytes} bytes "
                      f"needed to fall below {low}%")
    if not result.reaches_low_mark:
        result.summary += " (not enough: the rest is protected or not in this location)"
    return result


@dataclass
class PurgeResult:
    plan: PurgePlan
    purged: list[PlannedStudy] = field(default_factory=list)
    refused: list[tuple[PlannedStudy, str]] = field(default_factory=list)
    usage_after: storage.Usage | None = None


def purge(location: StorageLocation, usage_of: UsageFunction | None = None, *, acting_user=None,
          request=None) -> PurgeResult:
    """Carry out the plan of `location`: each study purged and journaled with what it freed.
    A study that became protected since the plan (a job, a legal hold) is left, and said so."""
    usage_of = usage_of or storage.usage
    result = PurgeResult(plan(location, usage_of))
    if not result.plan.studies:
        return result

    def still_allowed(study: Study) -> str:
        """Asked in the purge's transaction, the study's row locked (another node's purge or a
        new job must not slip in between)."""
        fresh = Study.objects.select_for_update().filter(pk=study.pk).values("legal_hold").first()
        if fresh is None:
            return "purged already"
        if fresh["legal_hold"]:
            return "under legal hold"
        return "has pending jobs" if has_pending_jobs(study) else ""

    freed = 0
    for planned in result.plan.studies:
        study = planned.study
        try:
            do_purge_study(study, location_name=location.name, freed_bytes=planned.frees_bytes,
                           reason=f"{location.name} above its high watermark of {location.high_watermark}%; "
                                  f"{planned.reason}", still_allowed=still_allowed,
                           acting_user=acting_user, request=request)
        except PurgeRefused as refused:
            result.refused.append((planned, str(refused)))
            continue
        result.purged.append(planned)
        freed += planned.frees_bytes
    result.usage_after = usage_of(location)
    before = result.plan.usage
    record(Action.PURGE, request=request, user=acting_user, username="" if acting_user else "system",
           target=f"storage {location.name}"[:255],
           detail=f"{count(len(result.purged), 'study', 'studies')} purged, {freed} bytes freed; {before.percent_used:.1f}% in use before, {result.usage_after.percent_used:.1f}% "
                  f"after (watermarks {location.high_watermark}%/{location.low_watermark}%)"
                  + (f"; {len(result.refused)} left: protected since the plan" if result.refused else ""))
    log.info("purge location=%s purged=%d refused=%d before=%.1f after=%.1f", location.name, len(result.purged),
             len(result.refused), before.percent_used, result.usage_after.percent_used)
    return result


def check_watermarks() -> int:
    """The scheduled check: purge every location above its high watermark. Returns the number
    of studies purged."""
    purged = 0
    for location in StorageLocation.objects.filter(high_watermark__isnull=False, low_watermark__isnull=False):
        try:
            purged += len(purge(location).purged)
        except OSError as error:  # a location that cannot be measured must not stop the others
            log.error("purge check failed location=%s error=%s", location.name, error.strerror or error)
    return purged
