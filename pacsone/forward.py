"""Forward a study to a registered remote AE (C-STORE through pacsone.dicom.scu.store), as a job
with a progress bar. Files go in batches, one association each, so progress moves and one bad
batch does not stop the rest."""

from django.db import transaction

from audit.journal import Action, Outcome, record

from .dicom import scu
from .models import Instance, RemoteAE, Study

BATCH = 25
MAX_REASONS = 20


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
    study = Study.objects.select_related("patient").get(pk=study_pk)
    remote = RemoteAE.objects.get(pk=remote_pk)
    instances = list(Instance.objects.filter(series__study=study).select_related("storage_location")
                     .order_by("series_id", "instance_number", "pk"))
    progress.start(len(instances))
    sent, reasons = 0, []
    for start in range(0, len(instances), BATCH):
        batch = instances[start:start + BATCH]
        try:
            result = scu.store(remote, batch)
            failed, problems = len(result.failed), result.failed
        except scu.ScuError as error:  # unreachable or unwilling: the whole batch failed
            result, failed, problems = None, len(batch), [str(error)]
        sent += result.sent if result else 0
        reasons += problems[: MAX_REASONS - len(reasons)]
        progress.advance(len(batch) - failed, failed=failed)
    failed_total = len(instances) - sent
    record(Action.FORWARD, username=username, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=f"to {remote.ae_title}", outcome=Outcome.FAILURE if failed_total else Outcome.SUCCESS,
           detail=f"{sent} sent, {failed_total} failed")
    summary = f"{sent} of {len(instances)} image(s) sent to {remote.ae_title}"
    if failed_total:
        raise RuntimeError("\n".join([summary, *reasons]))  # the job shows as failed, with the reasons
    return summary
