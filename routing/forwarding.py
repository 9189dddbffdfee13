"""A routing job: the instances of one study that a rule selects, to one destination, over one
association, skipping every instance that destination already confirmed (so a retry, or a job
taken up again after its worker died, sends only the rest). A window rule stops between two
instances when its window closes and waits for the next one. Each run is journaled."""

from audit.journal import Action, Outcome, record
from pacsone.forward import send_instances
from pacsone.humanize import count
from pacsone.models import Instance, RemoteAE, Study

from . import clock
from .commitment import request_after_routing
from .deliveries import commits_safe_from_a_crash_not_a_power_cut, confirm, undelivered
from .jobs import PermanentError, Reschedule, TransientError
from .matching import selected_instances
from .models import RoutingRule
from .schedule import window_open_at


def _check_window(rule: RoutingRule | None) -> None:
    if rule is None:
        return
    now = clock.now()
    opens = window_open_at(rule, now)
    if opens > now:
        raise Reschedule(opens, f"waiting for the window of rule {rule.name} ({rule.schedule_text()})")


def route_job(progress, study_pk: int, destination_pk: int, rule_pk: int) -> str:
    study = Study.objects.select_related("patient").filter(pk=study_pk).first()
    if study is None:
        return "nothing to send: the study was deleted"
    destination = RemoteAE.objects.filter(pk=destination_pk).first()
    if destination is None:
        raise PermanentError("the destination AE was removed from the registry")
    rule = RoutingRule.objects.filter(pk=rule_pk).first()
    if rule is None:
        raise PermanentError("the routing rule was removed")
    _check_window(rule)
    selected = selected_instances(rule, study)
    total = selected.count()
    # Not the header JSON: nothing here reads it, and decoding it cost more per instance than
    # recording its delivery.
    pending = list(undelivered(selected, destination).defer("header").order_by("series_id", "instance_number", "pk"))
    progress.start(total, done=total - len(pending))
    awaiting_commitment = destination.requests_storage_commitment
    if not pending:
        committing = request_after_routing(progress.job, destination, selected, study)
        return "; ".join(filter(None, [f"all {count(total, 'instance', 'instances')} already confirmed by "
                                       f"{destination.ae_title}", committing]))

    def confirmed(instance: Instance, code: int) -> None:
        confirm(instance, destination, progress.job, code, awaiting_commitment=awaiting_commitment)
        progress.advance()  # a cancelled job (or one taken over) stops at its next write: LeaseLost

    def between() -> None:
        if rule.schedule == RoutingRule.Schedule.WINDOW:
            _check_window(rule)

    with commits_safe_from_a_crash_not_a_power_cut():
        report = send_instances(destination, pending, confirmed, between)
    progress.advance(0, failed=len(report.failures))
    delivered = total - len(pending) + report.sent
    outcome = Outcome.SUCCESS if delivered == total else Outcome.FAILURE
    reasons = report.reasons()
    record(Action.FORWARD, username="routing", ae_title=destination.ae_title, address=destination.host,
           patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"rule {rule.name} to {destination.ae_title}", outcome=outcome,
           detail=f"{report.sent} sent now, {delivered} of {total} confirmed" + (f"; {reasons[0]}" if reasons else ""))
    summary = f"{delivered} of {count(total, 'instance', 'instances')} confirmed by {destination.ae_title}"
    if report.transient:
        raise TransientError("\n".join([summary, *reasons]))
    if report.failures:
        raise PermanentError("\n".join([summary, *reasons]))
    committing = request_after_routing(progress.job, destination, selected, study)
    return "; ".join(filter(None, [summary, committing]))
