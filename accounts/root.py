"""The single built-in administrator, `root`."""

import secrets

from django.conf import settings

from .models import ROOT_USERNAME, User


def ensure_root() -> str | None:
    """Create `root` if it does not exist. Returns the generated password (to print once), or
    None when root already existed or its password came from PACS_ROOT_PASSWORD."""
    if User.objects.filter(username=ROOT_USERNAME).exists():
        return None
    if settings.PACS_ROOT_PASSWORD:
        User.objects.create_superuser(ROOT_USERNAME, email="", password=settings.PACS_ROOT_PASSWORD)
        return None
    # A generated password was printed on a console: root must replace it at the first login.
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(ROOT_USERNAME, email="", password=password, password_changed_at=None)
    return password
