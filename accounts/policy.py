"""Password expiry: one place decides whether a user's password has expired."""

import datetime

from django.conf import settings
from django.utils import timezone


def password_expired(user) -> bool:
    """True when the password must be changed before anything else: it was never set by the
    user's own hand (set by an administrator, `password_changed_at` cleared) or is older than
    PACS_PASSWORD_MAX_AGE_DAYS."""
    if not user.is_authenticated:
        return False
    if user.password_changed_at is None:
        return True
    max_age = settings.PACS_PASSWORD_MAX_AGE_DAYS
    if max_age == 0:
        return False
    return timezone.now() - user.password_changed_at > datetime.timedelta(days=max_age)
