"""Patient changes from ADT messages: demographics (A01/A04/A08/A31), merge (A40) and its
undoing, change of identifier (A47).

The index changes, not the stored files: C-FIND answers, pages and the API read the patient's
columns, so they show the new values at once. Each change and its journal entry are written in
one transaction (`do_*`), by the sending system (journaled as `hl7:<MSH-3>`) or, for an undo
from the page, by the user who asked.
"""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.journal import Action, record
from pacsone.humanize import count
from pacsone.models import Patient, Study

from .coercion import mark
from .models import PatientMerge, ScheduledStep
from .values import Sender


class NotApplied(Exception):
    """The message was read but cannot be applied (answered AE, with this reason)."""


def find_patient(patient_id: str, issuer: str = "") -> Patient | None:
    """The archive's patient with this ID: the one of this issuer, else the only one with the ID."""
    if not patient_id:
        return None
    candidates = list(Patient.objects.filter(patient_id=patient_id)[:10])
    if issuer:
        exact = [patient for patient in candidates if patient.issuer_of_patient_id == issuer]
        if exact:
            return exact[0]
        candidates = [patient for patient in candidates if not patient.issuer_of_patient_id]
    return candidates[0] if len(candidates) == 1 else None


def _describe(changes: dict) -> str:
    return "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in changes.items())


def do_update_demographics(patient: Patient, name: str | None, birth_date, sex: str | None, *,
                           sender: Sender, what: str) -> str:
    """Set the given values (None: keep, "": clear) on the patient and its open worklist entries."""
    wanted = {}
    if name is not None:
        wanted["patient_name"] = name
    if birth_date is not None:
        wanted["birth_date"] = birth_date or None  # "" clears it
    if sex is not None:
        wanted["sex"] = sex
    changes = {field: (getattr(patient, field), value) for field, value in wanted.items()
               if value != getattr(patient, field)}
    if not changes:
        return "no change"
    with transaction.atomic():
        for field, (_old, new) in changes.items():
            setattr(patient, field, new)
        patient.patient_name_search = patient.patient_name.upper()
        patient.save()
        mark(patient)
        steps = ScheduledStep.objects.filter(patient_id=patient.patient_id,
                                             state__in=[ScheduledStep.State.SCHEDULED, ScheduledStep.State.IN_PROGRESS])
        step_changes = {}
        if "patient_name" in changes:
            step_changes.update(patient_name=patient.patient_name, patient_name_search=patient.patient_name_search)
        if "birth_date" in changes:
            step_changes["birth_date"] = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
        if "sex" in changes:
            step_changes["sex"] = patient.sex
        if step_changes:
            steps.update(**step_changes)
        record(Action.MODIFY, username=sender.username, address=sender.address, patient_id=patient.patient_id,
               target=what[:255], detail=f"demographics: {_describe(changes)}")
    return f"updated {', '.join(changes)}"


def do_merge(source: Patient, target: Patient, *, sender: Sender, what: str) -> PatientMerge:
    """Move every study of `source` to `target`. The source row stays, without studies: its ID
    still names the merged patient (the merge record) and the undo puts exactly these studies back."""
    if source.pk == target.pk:
        raise NotApplied("the prior and the surviving patient are the same")
    with transaction.atomic():
        study_pks = list(Study.objects.filter(patient=source).values_list("pk", flat=True))
        Study.objects.filter(pk__in=study_pks).update(patient=target)
        mark(target)
        merge = PatientMerge.objects.create(source=source, target=target, source_patient_id=source.patient_id,
                                            target_patient_id=target.patient_id, study_pks=study_pks)
        ScheduledStep.objects.filter(patient_id=source.patient_id, state=ScheduledStep.State.SCHEDULED).update(
            patient_id=target.patient_id, patient_name=target.patient_name,
            patient_name_search=target.patient_name.upper())
        record(Action.MODIFY, username=sender.username, address=sender.address, patient_id=target.patient_id,
               target=what[:255], detail=f"merged patient {source.patient_id} into {target.patient_id}: "
                                         f"{count(len(study_pks), 'study', 'studies')} moved (merge {merge.pk})")
    return merge


def do_unmerge(merge: PatientMerge, *, acting_user=None, sender: Sender | None = None, request=None) -> int:
    """Undo a merge: the studies it moved that are still with the target go back to the source.
    How many went back."""
    if merge.undone_at is not None:
        raise NotApplied("this merge was undone already")
    if merge.source is None or merge.target is None:
        raise NotApplied("a patient of this merge no longer exists")
    with transaction.atomic():
        moved = Study.objects.filter(pk__in=merge.study_pks, patient=merge.target).update(patient=merge.source)
        mark(merge.source)
        merge.undone_at = timezone.now()
        merge.save(update_fields=["undone_at"])
        who = {"username": sender.username, "address": sender.address} if sender else {"user": acting_user, "request": request}
        record(Action.MODIFY, patient_id=merge.source_patient_id, target=f"unmerge {merge.pk}",
               detail=f"undid the merge of {merge.source_patient_id} into {merge.target_patient_id}: "
                      f"{count(moved, 'study', 'studies')} moved back", **who)
    return moved


def do_change_identifier(patient: Patient, new_id: str, new_issuer: str | None, *, sender: Sender, what: str) -> str:
    """ADT^A47: the patient's ID (and issuer) become the new ones; refused if another patient has them."""
    issuer = patient.issuer_of_patient_id if new_issuer is None else new_issuer
    if Patient.objects.filter(patient_id=new_id, issuer_of_patient_id=issuer).exclude(pk=patient.pk).exists():
        raise NotApplied(f"patient ID {new_id} is in use by another patient (merge them with A40)")
    old = patient.patient_id
    with transaction.atomic():
        patient.patient_id = new_id
        patient.issuer_of_patient_id = issuer
        patient.save(update_fields=["patient_id", "issuer_of_patient_id"])
        mark(patient)
        ScheduledStep.objects.filter(patient_id=old).update(patient_id=new_id, issuer_of_patient_id=issuer)
        record(Action.MODIFY, username=sender.username, address=sender.address, patient_id=new_id,
               target=what[:255], detail=f"patient identifier changed from {old} to {new_id}")
    return f"identifier {old} -> {new_id}"


def merged_ids(patient_id: str) -> list[str]:
    """The IDs whose studies a merge moved to the patient with this ID (still merged)."""
    return list(PatientMerge.objects.filter(target_patient_id=patient_id, undone_at__isnull=True)
                .values_list("source_patient_id", flat=True))


def surviving_id(patient_id: str) -> str | None:
    """The patient ID that a merged-away ID now stands for, if any."""
    merge = PatientMerge.objects.filter(source_patient_id=patient_id, undone_at__isnull=True).first()
    return merge.target_patient_id if merge else None


def merged_away_q(path: str, patient_id: str) -> Q:
    """For C-FIND: the patient at ORM `path` is the one `patient_id` was merged into (so the
    prior ID still finds the merged studies, as long as the merge stands)."""
    targets = PatientMerge.objects.filter(source_patient_id=patient_id, undone_at__isnull=True).values("target_id")
    return Q(**{f"{path}pk__in": targets})
