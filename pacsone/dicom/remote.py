"""Working with remote archives for people and schedules: search a remote AE (the fields of the
local search), retrieve studies from it as jobs, and synchronize with it (seed 004).

Each retrieve and each sync run is a routing Job (django-q2), so its state shows in Jobs; each
search, retrieve and sync is journaled.
"""

import datetime
import logging

from django.db.models import Q
from django.utils import timezone
from pydicom.dataset import Dataset

from audit.journal import Action, Outcome, record
from routing.jobs import start_job
from routing.models import Job

from ..models import RemoteAE, RemoteSync, Study
from . import query, scu
from .net import status
from ..humanize import count

log = logging.getLogger(__name__)

# Search fields -> DICOM keywords at STUDY level (returned in the results too).
STUDY_KEYS = {
    "patient_id": "PatientID",
    "patient_name": "PatientName",
    "study_id": "StudyID",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "accession_number": "AccessionNumber",
}
SERIES_KEYS = {"series_date": "SeriesDate", "series_time": "SeriesTime", "modality": "Modality"}
RETURNED = ("StudyInstanceUID", "PatientBirthDate", "StudyDescription", "ModalitiesInStudy",
            "NumberOfStudyRelatedInstances")
MAX_SERIES_CHECKS = 200  # studies checked one by one for series keys
SYNC_SCHEDULE_NAME = "remote-study-sync"


def study_identifier(values: dict) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = query.STUDY
    for field, keyword in STUDY_KEYS.items():
        setattr(ds, keyword, values.get(field) or "")
    for keyword in RETURNED:
        setattr(ds, keyword, "")
    return ds


def search(remote: RemoteAE, values: dict, user=None, request=None) -> list[Dataset]:
    """Studies of `remote` that match `values` (the search form's fields). Series keys (series
    date/time, modality) are asked at SERIES level of each study found, which any Q/R SCP
    answers (ModalitiesInStudy matching is optional in the standard)."""
    studies = scu.find(remote, study_identifier(values))
    series_values = {keyword: values[field] for field, keyword in SERIES_KEYS.items() if values.get(field)}
    if series_values:
        studies = [s for s in studies[:MAX_SERIES_CHECKS] if _has_series(remote, s, series_values)]
    asked = ", ".join(f"{k}={v}" for k, v in values.items() if v and k != "remote") or "all"
    record(Action.QUERY, request=request, user=user, ae_title=remote.ae_title, target=f"remote AE {remote.ae_title}",
           detail=f"{asked}; {count(len(studies), 'study', 'studies')}")
    return studies


def _has_series(remote: RemoteAE, study: Dataset, series_values: dict) -> bool:
    ds = Dataset()
    ds.QueryRetrieveLevel = query.SERIES
    ds.StudyInstanceUID = study.StudyInstanceUID
    ds.SeriesInstanceUID = ""
    for keyword, value in series_values.items():
        setattr(ds, keyword, value)
    return bool(scu.find(remote, ds, limit=1))


# --- Retrieve -------------------------------------------------------------------------------------


def start_retrieve(remote: RemoteAE, study_uid: str, user) -> Job:
    return start_job(Job.Kind.RETRIEVE, f"Retrieve {study_uid} from {remote.ae_title}", user,
                     "pacsone.dicom.remote.retrieve_job", remote.pk, study_uid)


def retrieve_job(progress, remote_pk: int, study_uid: str) -> str:
    """Job: C-MOVE one study to us; fails (and shows so) unless every instance arrived."""
    remote = RemoteAE.objects.get(pk=remote_pk)
    username = progress.job.owner.get_username() if progress.job.owner else ""
    progress.start(1)
    result, detail = _retrieve(remote, study_uid, username)
    progress.advance(done=1 if result.ok else 0, failed=0 if result.ok else 1)
    if not result.ok:
        raise scu.ScuError(detail)
    return detail


def _retrieve(remote: RemoteAE, study_uid: str, username: str = "") -> tuple[scu.MoveResult, str]:
    """Move one study here and journal it, whatever the outcome: (result, what happened)."""
    try:
        result = scu.retrieve_study(remote, study_uid)
    except scu.ScuError as error:
        result, detail = scu.MoveResult(status=status.UNABLE_TO_PROCESS), str(error)
    else:
        detail = result.summary()
    study = Study.objects.filter(study_instance_uid=study_uid).select_related("patient").first()
    record(Action.RETRIEVE, username=username, ae_title=remote.ae_title, address=remote.host,
           target=f"C-MOVE from {remote.ae_title}", study_uid=study_uid,
           patient_id=study.patient.patient_id if study else "",
           outcome=Outcome.SUCCESS if result.ok else Outcome.FAILURE, detail=detail)
    return result, detail


# --- Synchronization -------------------------------------------------------------------------------------


def run_due_syncs(now: datetime.datetime | None = None) -> str:
    """The schedule's entry point: start a sync job for each remote due at this hour."""
    hour = timezone.localtime(now or timezone.now()).hour
    started = []
    for sync in RemoteSync.objects.filter(enabled=True).select_related("remote"):
        if hour in sync.hour_list():
            start_sync(sync.remote)
            started.append(sync.remote.ae_title)
    return f"started sync of {', '.join(started) or 'none'} at hour {hour}"


def start_sync(remote: RemoteAE, user=None) -> Job:
    return start_job(Job.Kind.SYNC, f"Synchronize with {remote.ae_title}", user, "pacsone.dicom.remote.sync_job",
                     remote.pk)


def studies_we_lack(remote: RemoteAE, days: int | None) -> list[str]:
    """Study UIDs the remote holds (of the last `days` days) that we lack or hold fewer
    instances of than it reports."""
    ds = Dataset()
    ds.QueryRetrieveLevel = query.STUDY
    ds.StudyInstanceUID = ""
    ds.NumberOfStudyRelatedInstances = ""
    ds.StudyDate = ""
    if days:
        since = timezone.localdate() - datetime.timedelta(days=days)
        ds.StudyDate = since.strftime("%Y%m%d") + "-"
    remote_counts = {}
    for answer in scu.find(remote, ds, limit=scu.MAX_FIND_ANSWERS * 20):
        count = answer.get("NumberOfStudyRelatedInstances")
        remote_counts[str(answer.StudyInstanceUID)] = int(count) if count not in (None, "") else None
    ours = dict(Study.objects.filter(study_instance_uid__in=list(remote_counts))
                .values_list("study_instance_uid", "number_of_instances"))
    return sorted(uid for uid, count in remote_counts.items()
                  if uid not in ours or (count is not None and ours[uid] < count))


def sync_job(progress, remote_pk: int) -> str:
    remote = RemoteAE.objects.get(pk=remote_pk)
    sync = RemoteSync.objects.filter(remote=remote).first()
    missing = studies_we_lack(remote, sync.days if sync else None)
    progress.start(len(missing))
    received = failed = 0
    for study_uid in missing:
        result, _detail = _retrieve(remote, study_uid, username="(sync)")
        received += result.completed
        failed += 0 if result.ok else 1
        progress.advance(done=1 if result.ok else 0, failed=0 if result.ok else 1)
    summary = f"{count(len(missing), 'study', 'studies')} lacking, {len(missing) - failed} pulled ({received} instances), {failed} failed"
    RemoteSync.objects.filter(remote=remote).update(last_run_at=timezone.now(), last_result=summary)
    record(Action.RETRIEVE, username="(sync)", ae_title=remote.ae_title, target=f"sync with {remote.ae_title}",
           outcome=Outcome.SUCCESS if not failed else Outcome.FAILURE, detail=summary)
    if failed:
        raise scu.ScuError(summary)
    return summary


def recent_retrieves(user, limit: int = 20):
    return Job.objects.filter(owner=user, kind__in=[Job.Kind.RETRIEVE, Job.Kind.SYNC])[:limit]


def queryable_remotes():
    return RemoteAE.objects.filter(Q(is_queryable=True)).order_by("ae_title")
