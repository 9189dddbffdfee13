"""Logins, logouts, failed logins and lockouts go into the system journal; a new password or a
disabled account revokes the user's API tokens (deleting the user deletes them by cascade)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit.journal import Action, Outcome, client_address, record

from .models import ApiToken, User


@receiver(post_save, sender=User)
def revoke_api_tokens(sender, instance, **kwargs):
    """After set_password() (own change, reset by root, the API) or when disabled."""
    if getattr(instance, "_revoke_api_tokens", False) or not instance.is_active:
        ApiToken.objects.filter(user=instance).delete()
    instance._revoke_api_tokens = False


@receiver(user_logged_in)
def journal_login(sender, request, user, **kwargs):
    record(Action.LOGIN, request=request, user=user)


@receiver(user_logged_out)
def journal_logout(sender, request, user, **kwargs):
    if user is not None:
        record(Action.LOGOUT, request=request, user=user)


@receiver(user_login_failed)
def journal_failed_login(sender, credentials, request=None, **kwargs):
    # The attempted user name is recorded as the target: no such user may exist.
    record(
        Action.LOGIN_FAILED,
        address=client_address(request),
        target=str(credentials.get("username", ""))[:150],
        outcome=Outcome.FAILURE,
    )


@receiver(user_locked_out)
def journal_lockout(sender, request, username=None, ip_address=None, **kwargs):
    record(
        Action.LOCKED_OUT,
        address=ip_address or client_address(request),
        target=str(username or "")[:150],
        outcome=Outcome.DENIED,
    )
