"""DRF permissions, all asking the one privilege check (accounts.privileges)."""

from rest_framework.permissions import BasePermission

from .policy import password_expired
from .privileges import Privilege, has_privilege


class ActiveUserWithValidPassword(BasePermission):
    """The default for every endpoint: a logged-in, active user whose password is valid."""

    message = "Log in first; an expired password must be changed on the web page."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and not password_expired(user))


class IsRoot(ActiveUserWithValidPassword):
    message = "Only root administers users and groups."

    def has_permission(self, request, view):
        return super().has_permission(request, view) and request.user.is_root


def privilege_permission(privilege: Privilege) -> type[BasePermission]:
    """A permission class requiring `privilege` (on top of a valid login)."""

    class HasPrivilege(ActiveUserWithValidPassword):
        message = f"Needs the {privilege.label} privilege."

        def has_permission(self, request, view):
            return super().has_permission(request, view) and has_privilege(request.user, privilege)

    HasPrivilege.__name__ = f"Has{privilege.name.title().replace('_', '')}Privilege"
    return HasPrivilege
