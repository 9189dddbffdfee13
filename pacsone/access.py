"""The access functions (DESIGN.md invariant 2): the only way a page, the API, an export or a
job result reaches patient data.

Each `access_*` function takes the actor (the request, or a user where there is no request)
and an identifier, and returns the object if the actor may reach it. Otherwise it raises the
same `Http404` as for an object that does not exist, and writes exactly one journal entry
(outcome denied), so a guessed URL leaves a trace. The `*_for(user)` functions are the
queryset forms, for lists. All of them rest on the one visibility rule in
pacsone.visibility (`visible_studies`, `visible_patients`).

Jobs: a user sees their own jobs, System Administration sees everyone's; a job's title names
no patient. Its message and result are patient data: the message is shown to the owner and to
those who may see every study the job touches; the result (an export ZIP) is downloaded only by
its owner, and only while they may still see every one of those studies.
"""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery, prefetch_related_objects
from django.http import Http404

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome, record

from .humanize import count
from .models import Attachment, Instance, Note, Patient, Series, Study
from .visibility import trashed_studies, visible_patients, visible_studies

HIDDEN_MESSAGE = "(details hidden: this job concerns studies you may not see)"


def _actor(who) -> tuple[object, object]:
    """(user, Django request or None) for a request (Django's or DRF's) or a user."""
    if hasattr(who, "META"):
        user = who.user  # on a DRF request this authenticates (session or token) first
        return user, getattr(who, "_request", who)
    return who, None


def journal_denial(who, action: str, target: str, detail: str, *, study_uid: str = "", patient_id: str = "") -> None:
    """The one denied entry of a refusal. The request is marked, so that the 403 journaling
    middleware (audit.middleware) does not write a second one."""
    user, request = _actor(who)
    record(action, request=request, user=user, study_uid=study_uid[:64], patient_id=patient_id[:64],
           target=target[:255], outcome=Outcome.DENIED, detail=detail)
    if request is not None:
        request.denial_journaled = True


def _refuse(who, action: str, what: str, *, exists: bool, study_uid: str = "", patient_id: str = ""):
    """Journal one denied entry and return the 404 to raise. The answer is the same whether the
    object exists or not; only the journal (read by administrators) tells them apart."""
    journal_denial(who, action, what, "not visible to this user" if exists else "no such object",
                   study_uid=study_uid, patient_id=patient_id)
    return Http404("Not found.")


def deny(who, action: str, reason: str, *, target: str = "", study_uid: str = "", patient_id: str = ""):
    """Journal an action refused on something the actor may see, and return the 403 to raise
    (pages and the API answer it as 403, with `reason`, and journal nothing more)."""
    journal_denial(who, action, target, reason, study_uid=study_uid, patient_id=patient_id)
    return PermissionDenied(reason)


def _number(value) -> int:
    """An id from a URL; anything else matches nothing (and is refused as missing)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- Queryset forms -------------------------------------------------------------------------------------


def studies_for(user) -> QuerySet:
    return visible_studies(user, Study.objects.select_related("patient"))


def patients_for(user) -> QuerySet:
    return visible_patients(user, Patient.objects.all())


def series_for(user) -> QuerySet:
    return Series.objects.filter(study__in=visible_studies(user))


def instances_for(user) -> QuerySet:
    return Instance.objects.filter(series__study__in=visible_studies(user))


def notes_for(user) -> QuerySet:
    return Note.objects.filter(study__in=visible_studies(user))


def attachments_for(user) -> QuerySet:
    return Attachment.objects.filter(note__study__in=visible_studies(user))


def jobs_for(user) -> QuerySet:
    from routing.models import Job

    jobs = Job.objects.select_related("owner")
    if user is None or not user.is_authenticated:
        return jobs.none()
    return jobs if has_privilege(user, Privilege.SYSTEM_ADMIN) else jobs.filter(owner=user)


def trash_for(user) -> QuerySet:
    """The studies in the trash, for System Administration only (hidden from everyone else,
    as from every other list)."""
    if user is None or not user.is_authenticated or not has_privilege(user, Privilege.SYSTEM_ADMIN):
        return Study.objects.none()
    return trashed_studies(Study.objects.select_related("patient"))


def may_see_all(user, studies) -> bool:
    """True if `user` may see every one of `studies` (a queryset or a list of studies)."""
    pks = {study.pk for study in studies}
    return len(pks) == visible_studies(user, Study.objects.filter(pk__in=pks)).count()


# --- One object --------------------------------------------------------------------------------------------


def access_study(who, study_uid: str, *, action: str = Action.VIEW) -> Study:
    user, _ = _actor(who)
    study = studies_for(user).filter(study_instance_uid=study_uid).first()
    if study is None:
        exists = Study.objects.filter(study_instance_uid=study_uid).exists()
        raise _refuse(who, action, "study", exists=exists, study_uid=study_uid)
    return study


def access_patient(who, patient_pk: int, *, action: str = Action.VIEW) -> Patient:
    user, _ = _actor(who)
    patient_pk = _number(patient_pk)
    patient = patients_for(user).filter(pk=patient_pk).first()
    if patient is None:
        exists = Patient.objects.filter(pk=patient_pk).exists()
        raise _refuse(who, action, f"patient {patient_pk}", exists=exists)
    return patient


def access_series(who, study_uid: str, series_uid: str, *, action: str = Action.VIEW) -> Series:
    study = access_study(who, study_uid, action=action)
    series = Series.objects.filter(study=study, series_instance_uid=series_uid).first()
    if series is None:
        raise _refuse(who, action, f"series {series_uid}", exists=False, study_uid=study_uid)
    series.study = study  # already fetched, with its patient
    return series


def access_instance(who, study_uid: str, sop_uid: str, *, action: str = Action.VIEW) -> Instance:
    """An image of a study the actor may see (the study in the URL must be the image's)."""
    study = access_study(who, study_uid, action=action)
    instance = (Instance.objects.select_related("storage_location", "series")
                .filter(series__study=study, sop_instance_uid=sop_uid).first())
    if instance is None:
        raise _refuse(who, action, f"instance {sop_uid}", exists=False, study_uid=study_uid)
    instance.study = study
    return instance


def access_attachment(who, attachment_pk: int, *, action: str = Action.VIEW) -> Attachment:
    user, _ = _actor(who)
    attachment_pk = _number(attachment_pk)
    attachment = attachments_for(user).select_related("note__study__patient").filter(pk=attachment_pk).first()
    if attachment is None:
        exists = Attachment.objects.filter(pk=attachment_pk).exists()
        raise _refuse(who, action, f"attachment {attachment_pk}", exists=exists)
    return attachment


def access_job(who, job_pk: int, *, action: str = Action.VIEW):
    """A job the actor may list, with its message replaced when it concerns studies they may
    not see (the title names no patient)."""
    from routing.models import Job

    user, _ = _actor(who)
    job_pk = _number(job_pk)
    job = jobs_for(user).filter(pk=job_pk).first()
    if job is None:
        raise _refuse(who, action, f"job {job_pk}", exists=Job.objects.filter(pk=job_pk).exists())
    return shown_job(user, job)


def job_contents_visible(user, job) -> bool:
    """The owner sees their job's message; others only if they may see every study it touches."""
    return job.owner_id == user.pk or may_see_all(user, job.studies.all())


def shown_job(user, job):
    """The job as `user` may see it: message and result link blanked if they may not."""
    if not job_contents_visible(user, job):
        job.message = HIDDEN_MESSAGE if job.message else ""
        job.result_path = ""
    elif job.owner_id != user.pk:
        job.result_path = ""  # only the owner downloads the result
    return job


def with_shown_studies(user, jobs: list) -> list:
    """Each job gets `shown_studies`: the studies it touches that `user` may see (their patient
    and description stand beside the job's title, which names no patient). One query per page."""
    studies = studies_for(user).order_by("patient__patient_name", "study_date")
    prefetch_related_objects(jobs, Prefetch("studies", queryset=studies, to_attr="shown_studies"))
    return jobs


def journal_subjects(user, entries: list) -> list:
    """Each journal entry gets `shown_study` and `shown_patient` (or None): the study and patient
    it names, if they still exist and `user` may see them, so the journal shows a name and a
    description beside the bare identifiers. Two queries per page."""
    uids = {entry.study_uid for entry in entries if entry.study_uid}
    patient_ids = {entry.patient_id for entry in entries if entry.patient_id}
    studies = {study.study_instance_uid: study for study in studies_for(user).filter(study_instance_uid__in=uids)}
    patients = {}
    for patient in patients_for(user).filter(patient_id__in=patient_ids).order_by("pk"):
        patients.setdefault(patient.patient_id, patient)
    for entry in entries:
        entry.shown_study = studies.get(entry.study_uid)
        entry.shown_patient = entry.shown_study.patient if entry.shown_study else patients.get(entry.patient_id)
    return entries


def access_job_result(who, job_pk: int, *, action: str = Action.DOWNLOAD):
    """(job, path) of a job's result file: only for its owner, only while they may still see
    every study it holds, and only if the file is still there."""
    from routing.models import Job

    user, _ = _actor(who)
    job_pk = _number(job_pk)
    job = jobs_for(user).filter(pk=job_pk, owner=user).exclude(result_path="").first()
    if job is None or not may_see_all(user, job.studies.all()):
        raise _refuse(who, action, f"job {job_pk} result", exists=Job.objects.filter(pk=job_pk).exists())
    path = (settings.SHARED_DIR / job.result_path).resolve()
    if settings.SHARED_DIR.resolve() not in path.parents or not path.is_file():
        raise _refuse(who, action, f"job {job_pk} result", exists=False)
    return job, Path(path)


def remote_answers_for(who, answers: list) -> list:
    """C-FIND answers of a remote AE without the studies held here that the actor may not see:
    a remote that is this archive itself (or holds copies of our studies) answers a person
    through the one visibility rule too. Hidden answers are journaled as one denial."""
    user, _ = _actor(who)
    if has_privilege(user, Privilege.VIEW):
        return answers
    uids = {str(answer.get("StudyInstanceUID", "") or "") for answer in answers}
    held = set(Study.objects.filter(study_instance_uid__in=uids).values_list("study_instance_uid", flat=True))
    visible = set(studies_for(user).filter(study_instance_uid__in=held).values_list("study_instance_uid", flat=True))
    shown = [answer for answer in answers
             if str(answer.get("StudyInstanceUID", "") or "") not in held - visible]
    if len(shown) < len(answers):
        journal_denial(who, Action.QUERY, "remote search",
                       f"{count(len(answers) - len(shown), 'answer', 'answers')} hidden: studies held here that this user may not see")
    return shown


# --- Adding to the archive ---------------------------------------------------------------------------------


def may_add_to(user, patient_id: str, issuer: str, study_uid: str, *, new_patient: bool = False) -> bool:
    """May `user` upload or import a file naming this patient and study? Not into a study or a
    patient already in the archive that they may not see: the file would join it, and its name,
    birth date and sex would then show to them through their own upload. (The refusal says so:
    it tells them the Patient ID is in use, never whose it is.) `new_patient`: the same upload
    made this patient, so a new study may join it."""
    if has_privilege(user, Privilege.VIEW):
        return True
    study = Study.objects.filter(study_instance_uid=study_uid).first()
    if study is not None:
        return visible_studies(user, Study.objects.filter(pk=study.pk)).exists()
    if new_patient:
        return True
    patient = Patient.objects.filter(patient_id=patient_id, issuer_of_patient_id=issuer).first()
    return patient is None or patients_for(user).filter(pk=patient.pk).exists()


# --- What a page may show of an accessed object ------------------------------------------------------------


def series_of(study: Study) -> QuerySet:
    """The series of an accessed study, each with the SOP Instance UID of its first image (for
    its thumbnail), in one query."""
    first = Instance.objects.filter(series=OuterRef("pk")).order_by("instance_number", "pk")
    return study.series.annotate(first_sop=Subquery(first.values("sop_instance_uid")[:1]))


def with_first_images(studies: list) -> list:
    """Accessed studies (a page of a list), each with `first_sop`: the SOP Instance UID of its
    first image (its thumbnail), by first series then first image, in one query."""
    firsts: dict[int, str] = {}
    rows = (Instance.objects.filter(series__study__in=[study.pk for study in studies])
            .order_by("series__study_id", "series__series_number", "series_id", "instance_number", "pk")
            .values_list("series__study_id", "sop_instance_uid"))
    for study_pk, sop_uid in rows.iterator():
        firsts.setdefault(study_pk, sop_uid)
    for study in studies:
        study.first_sop = firsts.get(study.pk, "")
    return studies
