"""Changes of a study's or a patient's flags by a person, each with its journal entry written in
the same transaction (DESIGN.md invariant 4): publish / make private (Modify), mark read or
unread (Mark Study). Privileges are checked by the interface (page, API); these functions check
that the change reaches only what the actor may see.

Publishing a patient carries to every study of the patient, so it needs View (which sees them
all); without View a Modify user publishes the studies she may see one by one.
"""

from django.db import transaction

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from .access import deny, may_see_all
from .models import Patient, Study
from .visibility import set_patient_public, set_study_public


def _subject(study: Study) -> dict[str, str]:
    return {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}


def require_visible(acting_user, studies, action: str, *, request=None) -> None:
    """Refuse, with a journaled 403, an action that would reach a study the actor may not see.
    Callers reach studies through pacsone.access first, so this is the last guard."""
    if not may_see_all(acting_user, studies):
        raise deny(request or acting_user, action, "the action would reach a study this user may not see")


def do_set_study_public(study: Study, public: bool, *, acting_user, request=None) -> None:
    """A study's flag (its patient's too when it is the patient's only study)."""
    require_visible(acting_user, [study], Action.MODIFY, request=request)
    with transaction.atomic():
        set_study_public(study, public)
        record(Action.MODIFY, request=request, user=acting_user, detail=f"public={public}", **_subject(study))


def do_set_patient_public(patient: Patient, public: bool, *, acting_user, request=None) -> None:
    """A patient's flag and all its studies' (needs View: the cascade reaches every study)."""
    if not has_privilege(acting_user, Privilege.VIEW):
        raise deny(request or acting_user, Action.MODIFY,
                   "changing a patient's flag changes all its studies: it needs the View privilege",
                   target=f"patient {patient.pk}", patient_id=patient.patient_id)
    with transaction.atomic():
        set_patient_public(patient, public)
        record(Action.MODIFY, request=request, user=acting_user, patient_id=patient.patient_id,
               target=f"patient {patient.pk}", detail=f"public={public} (all its studies too)")


def do_mark_study(study: Study, read: bool, *, acting_user, request=None) -> None:
    require_visible(acting_user, [study], Action.MARK, request=request)
    with transaction.atomic():
        study.read = read
        study.save(update_fields=["read", "updated_at"])
        record(Action.MARK, request=request, user=acting_user, detail=f"read={read}", **_subject(study))
        if read:  # HL7 destinations that want "read" are notified (hl7/events.py)
            from hl7.events import study_marked_read
            transaction.on_commit(lambda: study_marked_read(study.pk))
