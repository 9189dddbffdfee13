"""Idle sessions: the journal records when a session ended because its user was idle.

Sessions expire by themselves after PACS_SESSION_IDLE_MINUTES without a request (the cookie
age, renewed on every request). A django-q2 schedule runs `journal_expired_sessions` every
minute: each expired session of a logged-in user becomes a LOGOUT entry ("idle timeout") and
is deleted, as `clearsessions` would."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from audit.journal import Action, record
from pacsone.humanize import count



def journal_expired_sessions() -> str:
    expired = Session.objects.filter(expire_date__lt=timezone.now())
    users = get_user_model().objects
    ended = 0
    for session in expired.iterator():
        user_id = session.get_decoded().get("_auth_user_id")
        user = users.filter(pk=user_id).first() if user_id else None
        if user is not None:
            idle_since = session.expire_date - datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
            record(Action.LOGOUT, user=user, target="idle timeout",
                   detail=f"last request {idle_since:%Y-%m-%d %H:%M:%S} UTC")
            ended += 1
        session.delete()
    return f"{count(ended, 'idle session', 'idle sessions')} ended"
