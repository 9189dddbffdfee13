"""Which instances a routing rule takes, read from the index (Instance.source_ae and the stored
header JSON), never from the files; and routing a study that received instances.

A rule matches the calling AE title of the sender, or one attribute (any DICOM keyword) against
a pattern where `*` is any run of characters and `?` one character; a person name matches
whatever its case. Attributes are read from one instance per series: a rule matches on patient,
study or series attributes (Patient ID, Referring Physician's Name, Institution Name, Protocol
Name, Modality, ...), which the instances of a series share.
"""

import functools
import logging
import re

from django.db.models import Min, QuerySet
from pydicom.datadict import dictionary_VR, tag_for_keyword

from pacsone.models import Instance, Study

from . import clock
from .models import Job, RoutingRule
from .schedule import first_send

log = logging.getLogger(__name__)


class RuleError(ValueError):
    """A rule that cannot be used as written."""


def tag_key(keyword: str) -> str:
    """The DICOM JSON key ("00100020") of a keyword; RuleError when it is not one."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise RuleError(f"{keyword!r} is not a DICOM attribute keyword (e.g. PatientID, InstitutionName)")
    return f"{tag:08X}"


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in re.sub(r"\*+", "*", pattern))
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _compiled(pattern.strip(), ignore_case).fullmatch(value.strip()) is not None


def header_values(header: dict, key: str) -> list[str]:
    """The values of one element of a stored DICOM JSON header, as text ([""] when absent)."""
    element = header.get(key) or {}
    values = element.get("Value") or []
    texts = []
    for value in values:
        if isinstance(value, dict):  # a person name, or a sequence item (not matched on)
            texts.append(value.get("Alphabetic", ""))
        else:
            texts.append(str(value))
    return texts or [""]


def _header_matches(rule: RoutingRule, header: dict) -> bool:
    key = tag_key(rule.match_keyword)
    ignore_case = dictionary_VR(int(key, 16)) == "PN"
    return any(wildcard_match(rule.match_pattern, value, ignore_case) for value in header_values(header, key))


def selected_instances(rule: RoutingRule, study: Study) -> QuerySet:
    """The instances of `study` that `rule` routes (none when it does not match)."""
    instances = Instance.objects.filter(series__study=study)
    if rule.source_ae_pattern:
        aes = {ae for ae in instances.values_list("source_ae", flat=True).distinct()
               if wildcard_match(rule.source_ae_pattern, ae)}
        return instances.filter(source_ae__in=aes)
    first_of_series = instances.values("series_id").annotate(first=Min("pk")).values_list("first", flat=True)
    matching_series = [series_pk for series_pk, header in
                       Instance.objects.filter(pk__in=list(first_of_series)).values_list("series_id", "header")
                       if _header_matches(rule, header or {})]
    return instances.filter(series_id__in=matching_series)


def study_matches(rule: RoutingRule, study: Study) -> bool:
    return selected_instances(rule, study).exists()


def route_key(study_pk: int, rule_pk: int, destination_pk: int) -> str:
    return f"route:{study_pk}:{rule_pk}:{destination_pk}"


def route_study(study_pk: int, now=None) -> list[Job]:
    """After instances of a study were stored: for each enabled rule it matches and each of its
    destinations, queue a routing job, or move the queued one back to wait for quiet again."""
    rules = list(RoutingRule.objects.filter(enabled=True).prefetch_related("destinations"))
    study = Study.objects.filter(pk=study_pk).first()
    if not rules or study is None:
        return []
    now = now or clock.now()
    jobs = []
    for rule in rules:
        try:
            if not study_matches(rule, study):
                continue
        except RuleError as error:
            log.error("routing rule unusable rule=%s error=%s", rule.name, error)
            continue
        for destination in rule.destinations.all():
            jobs.append(queue_route(study, rule, destination, now))
    return jobs


def queue_route(study: Study, rule: RoutingRule, destination, now) -> Job:
    from .jobs import join_queued_job, start_job

    when, waiting = first_send(rule, now)
    key = route_key(study.pk, rule.pk, destination.pk)
    queued = join_queued_job(key, when)  # later instances join it; it waits for quiet again
    if queued is not None:
        return queued
    return start_job(Job.Kind.ROUTE, f"Routing rule {rule.name} to {destination.ae_title}", None,
                     "routing.forwarding.route_job", study.pk, destination.pk, rule.pk, studies=[study],
                     max_attempts=rule.max_attempts, not_before=when, waiting=waiting,
                     after_done="routing.autopurge.after_route" if rule.auto_purge else "", rule=rule,
                     dedupe_key=key)
