"""What a purge must leave alone (DESIGN.md "Purge watermarks"): a study under legal hold, one
younger than its retention (the minimum age of every study, or its modality's keep time), and
one with pending jobs. Each refusal comes with its reason in words, for the dry-run page."""

import datetime

from django.db import transaction
from django.utils import timezone

from audit.journal import Action, record
from pacsone.humanize import count
from pacsone.models import RetentionRule, Study


class Retention:
    """The retention rules as they are now, read once for a whole purge plan."""

    def __init__(self, now: datetime.datetime | None = None):
        self.now = now or timezone.now()
        rules = {rule.modality.upper(): rule.keep_days for rule in RetentionRule.objects.all()}
        self.minimum_days = rules.pop("", 0)
        self.modality_days = rules

    def keep_until(self, study: Study) -> tuple[datetime.datetime, str]:
        """Until when the study must be kept, and the rule that says so ('' when none does)."""
        days, why = self.minimum_days, f"minimum age {count(self.minimum_days, 'day', 'days')}" if self.minimum_days else ""
        for modality in filter(None, study.modalities_in_study.upper().split("\\")):
            if self.modality_days.get(modality, 0) > days:
                days, why = self.modality_days[modality], f"{modality} kept {count(self.modality_days[modality], 'day', 'days')}"
        return study.received_at + datetime.timedelta(days=days), why

    def protected_because(self, study: Study, pending: set[int]) -> str:
        """Why a purge must not remove this study now ('' when it may)."""
        if study.legal_hold:
            return "under legal hold"
        if study.pk in pending:
            return "has pending jobs"
        until, why = self.keep_until(study)
        if why and until > self.now:
            return f"retention: {why} (until {timezone.localtime(until):%Y-%m-%d %H:%M})"
        return ""


def do_set_legal_hold(study: Study, hold: bool, *, acting_user, request=None) -> None:
    """Put a study under legal hold or release it (System Administration), journaled with it."""
    from pacsone.actions import require_visible

    require_visible(acting_user, [study], Action.MODIFY, request=request)
    with transaction.atomic():
        Study.objects.filter(pk=study.pk).update(legal_hold=hold)
        study.legal_hold = hold
        record(Action.MODIFY, request=request, user=acting_user, detail=f"legal_hold={hold}",
               patient_id=study.patient.patient_id, study_uid=study.study_instance_uid)


def do_set_retention_rule(modality: str, keep_days: int | None, *, acting_user, request=None) -> None:
    """Set (or, with keep_days None, remove) the keep time of a modality; modality '' is the
    minimum age of every study. Journaled as a configuration change."""
    modality = modality.strip().upper()
    if len(modality) > 16 or not all(c.isalnum() or c == "_" for c in modality):
        raise ValueError("a modality is up to 16 letters or digits, e.g. CT or MR")
    if keep_days is not None and keep_days < 0:
        raise ValueError("keep days cannot be negative")
    with transaction.atomic():
        if keep_days is None:
            RetentionRule.objects.filter(modality=modality).delete()
        else:
            RetentionRule.objects.update_or_create(modality=modality, defaults={"keep_days": keep_days})
        record(Action.CONFIGURATION, request=request, user=acting_user,
               target=f"retention {modality or 'every study'}",
               detail="removed" if keep_days is None else f"keep {count(keep_days, 'day', 'days')}")
