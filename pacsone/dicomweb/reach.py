"""What a DICOMweb request may reach: the studies, series and instances named by its path,
through the access functions (a hidden study is the same 404 as a missing one), the privilege
a bulk retrieve needs, and the request's one journal entry per study (views: one per window)."""

from datetime import timedelta

from django.conf import settings
from django.http import Http404

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from ..access import access_instance, access_series, access_study, deny, journal_denial
from ..models import Instance, Study
from .dicom_json import check_uid


def require(request, privilege: Privilege, action: str, what: str, study_uid: str = "") -> None:
    """403 (journaled once) unless the caller holds `privilege`."""
    if not has_privilege(request.user, privilege):
        raise deny(request, action, f"Needs the {privilege.label} privilege.", target=what, study_uid=study_uid)


def checked(study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> None:
    check_uid(study_uid, "Study Instance UID")
    if series_uid is not None:
        check_uid(series_uid, "Series Instance UID")
    if sop_uid is not None:
        check_uid(sop_uid, "SOP Instance UID")


def reach(request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None,
          *, action: str = Action.VIEW) -> tuple[Study, object]:
    """(study, queryset of the instances the path names, in order); 404 if hidden or missing."""
    checked(study_uid, series_uid, sop_uid)
    instances = Instance.objects.select_related("storage_location", "series")
    if sop_uid is not None and series_uid is None:
        instance = access_instance(request, study_uid, sop_uid, action=action)
        return instance.study, instances.filter(pk=instance.pk)
    if sop_uid is not None:
        series = access_series(request, study_uid, series_uid, action=action)
        chosen = instances.filter(series=series, sop_instance_uid=sop_uid)
        if not chosen.exists():
            journal_denial(request, action, f"instance {sop_uid}", "no such object", study_uid=study_uid)
            raise Http404("Not found.")
        return series.study, chosen
    if series_uid is not None:
        series = access_series(request, study_uid, series_uid, action=action)
        return series.study, instances.filter(series=series).order_by("instance_number", "pk")
    study = access_study(request, study_uid, action=action)
    return study, instances.filter(series__study=study).order_by("series__series_number", "series_id",
                                                                 "instance_number", "pk")


def journal(request, action: str, study: Study, what: str, detail: str = "") -> None:
    """The request's entry; a view (frames, metadata, rendered) only when no view of the same study
    by the same user and address was journaled in the last PACS_VIEW_JOURNAL_MINUTES."""
    minutes = settings.PACS_VIEW_JOURNAL_MINUTES if action == Action.VIEW else 0
    if minutes:
        detail = f"{detail}; further views within {minutes} min are covered by this entry".lstrip("; ")
    record(action, request=request, patient_id=study.patient.patient_id, study_uid=study.study_instance_uid,
           target=what[:255], detail=detail[:1000], once_per=timedelta(minutes=minutes) if minutes else None)
