"""The one visibility rule (DESIGN.md invariant 2, seed 004 "User Access Control").

- Public studies are visible to every logged-in user (a patient made public makes all its
  studies public; everything received later is private, as everything received is).
- Private studies are visible to users with the View privilege; otherwise to a user whose
  first and last name match the study's Referring or Reading Physician; otherwise to a member
  of a group whose description matches the study's Institution Name.
- Changing a patient's flag changes all its studies; changing a study's flag changes its
  patient's only when it is that patient's only study.

This module is the rule; pacsone.access is the gate: pages, the API, exports and job results
reach studies and patients only through its `access_*` and `*_for(user)` functions, which rest
on `visible_studies()` / `visible_patients()`. Changes of the flags by people go through
pacsone.actions (`do_set_study_public`, `do_set_patient_public`).

A study in the trash (pacsone.deletion) is seen by nobody: every queryset here starts from
`live_studies()`, so pages, the API, DICOMweb, exports and C-FIND/C-MOVE/C-GET all skip it.
Only the trash page of System Administration lists it (`trashed_studies()`).
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.privileges import Privilege, has_privilege


def _person_name_match(field: str, first: str, last: str) -> Q:
    """A DICOM person name `Last^First[^Middle^Prefix^Suffix]` (its alphabetic group, alone or
    followed by `=` and the ideographic/phonetic groups), or `First Last` as some systems write
    it, compared case-insensitively."""
    condition = Q()
    changes = _CASE_CHANGES if not (first + last).isascii() else _CASE_CHANGES[:1]
    for first_spelled, last_spelled in dict.fromkeys((change(first), change(last)) for change in changes):
        dicom_name = f"{last_spelled}^{first_spelled}"
        condition |= (
            Q(**{f"{field}__iexact": dicom_name})
            | Q(**{f"{field}__istartswith": dicom_name + "^"})
            | Q(**{f"{field}__istartswith": dicom_name + "="})
            | Q(**{f"{field}__iexact": f"{first_spelled} {last_spelled}"})
        )
    return condition


# A non-ASCII name or description is also compared in upper, lower and title case: SQLite's LIKE
# folds ASCII letters only, so `Jürgen Müller` would not match `MÜLLER^JÜRGEN` (MariaDB's and
# PostgreSQL's folding would). Every term stays an indexed lookup.
_CASE_CHANGES = (str, str.upper, str.lower, str.title)


def _case_spellings(text: str) -> list[str]:
    changes = _CASE_CHANGES if not text.isascii() else _CASE_CHANGES[:1]
    return list(dict.fromkeys(change(text) for change in changes))


def private_access(user) -> Q | None:
    """The condition under which `user` (without View) sees a private study; None if never."""
    condition = Q(pk__in=[])
    first, last = user.first_name.strip(), user.last_name.strip()
    if first and last:
        condition |= _person_name_match("referring_physician_name", first, last)
        condition |= _person_name_match("reading_physician_name", first, last)
    descriptions = [d.strip() for d in user.pacs_groups.values_list("description", flat=True) if d.strip()]
    for description in descriptions:
        for spelled in _case_spellings(description):
            condition |= Q(institution_name__iexact=spelled)
    return condition


def live_studies(studies: QuerySet | None = None) -> QuerySet:
    """The studies not in the trash: where every visible set starts."""
    from .models import Study

    studies = Study.objects.all() if studies is None else studies
    return studies.filter(trashed_at__isnull=True)


def trashed_studies(studies: QuerySet | None = None) -> QuerySet:
    """The studies in the trash (for the trash page and its emptying only)."""
    from .models import Study

    studies = Study.objects.all() if studies is None else studies
    return studies.filter(trashed_at__isnull=False)


def visible_studies(user, studies: QuerySet | None = None) -> QuerySet:
    studies = live_studies(studies)
    if user is None or not user.is_authenticated or not user.is_active:
        return studies.none()
    if has_privilege(user, Privilege.VIEW):
        return studies
    # The study's own flag decides: a patient's flag is carried to all its studies when it
    # changes (set_patient_public). Every term of this OR is an indexed lookup on the study
    # table (`public IN (1)` rather than a bare `public`, which SQLite would scan), so the
    # databases answer it by merging index lookups instead of scanning every study.
    return studies.filter(Q(public__in=[True]) | private_access(user))


def group_visible_studies(group, studies: QuerySet | None = None) -> QuerySet:
    """What the rule lets every member of `group` see through the group alone (a DICOM AE linked
    to the group sees this): everything if the group holds View; otherwise public studies and
    private studies whose Institution Name is the group's description."""
    studies = live_studies(studies)
    if group is None:
        return studies.none()
    if Privilege.VIEW in group.privileges:
        return studies
    condition = Q(public__in=[True])
    if group.description.strip():
        condition |= Q(institution_name__iexact=group.description.strip())
    return studies.filter(condition)


def visible_patients(user, patients: QuerySet | None = None) -> QuerySet:
    from .models import Patient, Study

    patients = Patient.objects.all() if patients is None else patients
    if user is None or not user.is_authenticated or not user.is_active:
        return patients.none()
    if has_privilege(user, Privilege.VIEW):
        return patients
    # A patient is seen only through a study the user may see (a public patient's studies are
    # public, bar those received since): never through its own flag alone.
    any_visible_study = visible_studies(user, Study.objects.filter(patient=OuterRef("pk")))
    return patients.filter(Exists(any_visible_study))


def can_see_study(user, study) -> bool:
    from .models import Study

    return visible_studies(user, Study.objects.filter(pk=study.pk)).exists()


@transaction.atomic
def set_patient_public(patient, public: bool) -> None:
    """A patient's flag carries to all its studies."""
    patient.public = public
    patient.save(update_fields=["public"])
    patient.studies.update(public=public)


@transaction.atomic
def set_study_public(study, public: bool) -> None:
    """A study's flag carries to its patient only when it is the patient's only study."""
    study.public = public
    study.save(update_fields=["public", "updated_at"])
    patient = study.patient
    if patient.studies.count() == 1 and patient.public != public:
        patient.public = public
        patient.save(update_fields=["public"])
