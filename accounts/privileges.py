"""The 14 privileges of seed 004 and the one check every view, API and template uses
(DESIGN.md invariant 3)."""

import functools

from django.core.exceptions import PermissionDenied
from django.db import models


class Privilege(models.TextChoices):
    VIEW = "view", "View"
    MODIFY = "modify", "Modify"
    FORWARD = "forward", "Forward"
    QUERY = "query", "Query"
    MOVE = "move", "Move"
    DOWNLOAD = "download", "Download"
    EXPORT = "export", "Export"
    IMPORT = "import", "Import"
    PRINT = "print", "Print"
    UPLOAD = "upload", "Upload"
    MONITOR = "monitor", "Monitor"
    MARK_STUDY = "mark_study", "Mark Study"
    CHANGE_STORAGE = "change_storage", "Change Storage"
    SYSTEM_ADMIN = "system_admin", "System Administration"


ALL_PRIVILEGES = frozenset(Privilege.values)


def privileges_of(user) -> frozenset[str]:
    """The privileges a user holds: their own and their groups'; root holds all of them.
    Cached on the user object for the length of a request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_privileges_cache", None)
    if cached is None:
        if user.is_root:
            cached = ALL_PRIVILEGES
        else:
            held = set(user.privileges)
            for group_privileges in user.pacs_groups.values_list("privileges", flat=True):
                held.update(group_privileges)
            cached = frozenset(held & ALL_PRIVILEGES)
        user._privileges_cache = cached
    return cached


def has_privilege(user, privilege: str) -> bool:
    return str(privilege) in privileges_of(user)


def redirect_to_login(request):
    # Imported here: auth.views imports the user model, which imports this module.
    from django.contrib.auth.views import redirect_to_login as redirect

    return redirect(request.get_full_path())


def privilege_required(privilege: str):
    """View decorator: log in first (302), then 403 without the privilege."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request)
            if not has_privilege(request.user, privilege):
                raise PermissionDenied(f"needs the {Privilege(privilege).label} privilege")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def root_required(view):
    """View decorator for user administration: only root (302 to log in, else 403)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request)
        if not request.user.is_root:
            raise PermissionDenied("only root administers users and groups")
        return view(request, *args, **kwargs)

    return wrapper
