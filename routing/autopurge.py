"""Auto-purge after routing (a rule's option, off by default): once a routing job is done, the
study is removed only if every destination of the rule confirmed every instance of the study
(routing.models.Delivery: C-STORE Success per instance, and the destination's Storage Commitment
where it was asked: routing/commitment.py)
and no job of the study is pending. The removal and its journal entry share one transaction
(pacsone.deletion.delete_study, as do_empty_trash uses it)."""

import logging

from audit.journal import Action, record
from pacsone.deletion import delete_study
from pacsone.humanize import count
from pacsone.models import Instance

from .deliveries import all_confirmed
from .models import Job
from .pending import has_pending_jobs

log = logging.getLogger(__name__)


def after_route(job: Job) -> str:
    rule = job.rule
    study = job.studies.select_related("patient").first()
    if rule is None or not rule.auto_purge or study is None:
        return "nothing to purge"
    return do_auto_purge(study, rule)


def purge_job(progress, study_pk: int, rule_pk: int) -> str:
    """Auto-purge queued by a storage commitment report that came after the routing job ended."""
    from pacsone.models import Study

    from .models import RoutingRule

    study = Study.objects.select_related("patient").filter(pk=study_pk).first()
    rule = RoutingRule.objects.filter(pk=rule_pk).first()
    if study is None or rule is None or not rule.auto_purge:
        return "nothing to purge"
    return do_auto_purge(study, rule)


def do_auto_purge(study, rule) -> str:
    instances = Instance.objects.filter(series__study=study)
    destinations = list(rule.destinations.all())
    if not destinations or not instances.exists():
        return "kept: nothing routed"
    if has_pending_jobs(study):
        log.info("auto-purge deferred study_pk=%s rule=%s: pending jobs", study.pk, rule.name)
        return "kept: the study has pending jobs"
    if not all_confirmed(instances, destinations):
        log.info("auto-purge refused study_pk=%s rule=%s: not every instance confirmed", study.pk, rule.name)
        return "kept: not every destination confirmed every instance"
    subject = {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}
    names = ", ".join(d.ae_title for d in destinations)

    def journal(instances: int) -> None:
        record(Action.PURGE, username="routing", target=f"study, auto-purge of rule {rule.name}",
               detail=f"{count(instances, 'instance', 'instances')}, every one confirmed by {names}", **subject)

    purged = delete_study(study, journal)
    log.info("auto-purged study_pk=%s rule=%s instances=%d", study.pk, rule.name, purged)
    return f"purged {count(purged, 'instance', 'instances')}"
