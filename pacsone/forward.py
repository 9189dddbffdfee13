"""Forward a study to a registered remote AE, as a job with a progress bar: a person's Forward
(here) and the routing table's jobs (routing/forwarding.py) send the same way.

The instances of one study go to one destination over one association (pacsone.dicom.scu.
store_stream), each in its stored transfer syntax when the destination accepted it, else
decompressed. Each confirmed instance is recorded (routing.models.Delivery) as it is answered,
so that an attempt after a crash or a transient failure sends only what was not confirmed.
A destination that cannot be reached, goes away or answers "out of resources" (0xA7xx) is a
transient failure (the job retries later); a refused instance (0xA9xx, 0xCxxx, an SOP class the
destination does not take) is a permanent one.
"""

from dataclasses import dataclass, field
from typing import Callable

from django.db import transaction

from audit.journal import Action, Outcome, record

from .dicom import scu
from .dicom.net import sending
from .dicom.net import status as dicom_status
from .models import Instance, RemoteAE, Study
from .humanize import count

MAX_REASONS = 20


def is_transient(code: int) -> bool:
    """Refused: out of resources (PS3.4 B.2.3): the destination may take it later."""
    return 0xA700 <= code <= 0xA7FF


def is_confirmed(code: int) -> bool:
    return code == dicom_status.SUCCESS or code in sending.WARNING_STATUSES


@dataclass
class SendReport:
    sent: int = 0
    failures: list[str] = field(default_factory=list)  # permanent, per instance, in words
    transient: str = ""  # why the association stopped before the end, when it did

    def reasons(self) -> list[str]:
        return ([self.transient] if self.transient else []) + self.failures[:MAX_REASONS]


def send_instances(remote: RemoteAE, instances: list[Instance], confirmed: Callable[[Instance, int], None],
                   between: Callable[[], None] | None = None) -> SendReport:
    """Send over one association; `confirmed(instance, status)` after each Success or Warning,
    `between()` after each answer (it may raise to stop: a cancelled job, a closed window)."""
    by_uid = {instance.sop_instance_uid: instance for instance in instances}
    outgoing = [scu.outgoing_instance(i)
                for i in instances]
    report = SendReport()

    def answered(item: sending.Instance, code: int | None, reason: str) -> bool:
        instance = by_uid[item.sop_instance]
        if code is not None and is_confirmed(code):
            report.sent += 1
            confirmed(instance, code)
        elif code is not None and is_transient(code):
            report.transient = f"{remote.ae_title} {reason}"
            return False
        else:
            report.failures.append(f"{instance.sop_instance_uid}: {reason}")
        if between:
            between()
        return True

    try:
        scu.store_stream(remote, outgoing, answered)
    except scu.ScuError as error:
        report.transient = str(error)
    return report


def do_forward_study(study: Study, remote: RemoteAE, *, acting_user, request=None):
    """A person forwards a study they may see (Forward): queued as a job, journaled with it."""
    from routing.jobs import start_job
    from routing.models import Job

    from .actions import require_visible

    require_visible(acting_user, [study], Action.FORWARD, request=request)
    with transaction.atomic():
        job = start_job(Job.Kind.FORWARD, f"Forward of a study to {remote.ae_title}", acting_user,
                        "pacsone.forward.forward_job", study.pk, remote.pk, acting_user.get_username(),
                        studies=[study])
        record(Action.FORWARD, request=request, user=acting_user, target=f"job {job.pk} to {remote.ae_title}",
               patient_id=study.patient.patient_id, study_uid=study.study_instance_uid)
    return job


def forward_job(progress, study_pk: int, remote_pk: int, username: str) -> str:
    """A person's forward: every instance of the study, except those an earlier attempt of this
    same job delivered (a forward asked again later sends everything again)."""
    from routing.deliveries import commits_safe_from_a_crash_not_a_power_cut, confirm, delivered_by_job
    from routing.jobs import PermanentError, TransientError

    study = Study.objects.select_related("patient").get(pk=study_pk)
    remote = RemoteAE.objects.get(pk=remote_pk)
    instances = list(Instance.objects.filter(series__study=study).select_related("storage_location")
                     .order_by("series_id", "instance_number", "pk"))
    earlier = delivered_by_job(progress.job, remote)
    pending = [instance for instance in instances if instance.pk not in earlier]
    progress.start(len(instances), done=len(instances) - len(pending))

    def confirmed(instance: Instance, code: int) -> None:
        confirm(instance, remote, progress.job, code)
        progress.advance()

    with commits_safe_from_a_crash_not_a_power_cut():
        report = send_instances(remote, pending, confirmed)
    sent = len(instances) - len(pending) + report.sent
    failed_total = len(instances) - sent
    progress.advance(0, failed=failed_total)
    record(Action.FORWARD, username=username, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"to {remote.ae_title}", outcome=Outcome.FAILURE if failed_total else Outcome.SUCCESS,
           detail=f"{sent} sent, {failed_total} failed" + (f" ({report.reasons()[0]})" if failed_total else ""))
    summary = f"{sent} of {count(len(instances), 'image', 'images')} sent to {remote.ae_title}"
    if report.transient:
        raise TransientError("\n".join([summary, *report.reasons()]))
    if failed_total:
        raise PermanentError("\n".join([summary, *report.reasons()]))  # failed, with the reasons
    return summary
