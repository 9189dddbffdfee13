"""API tokens: issued with a name and an expiry (PACS_TOKEN_DAYS), stored as a SHA-256 of the
key, checked by the REST API's token authentication, revoked by their owner on the token page,
and revoked for a user whose password changes (own change, reset by root, the API) or who is
disabled or deleted (accounts.signals, and the foreign key's cascade).

Tokens do not follow the browser's idle timeout (PACS_SESSION_IDLE_MINUTES): a script may run
once a day. They end at their expiry, on revocation, or with those account events.
"""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from audit.journal import Action, Outcome, record

from .models import ApiToken, User

MAX_TOKENS_PER_USER = 20
# last_used_at is written at most this often per token (not one write per request).
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class TokenRefused(ValueError):
    """A token that cannot be issued (bad name, too many tokens)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user` and its key (shown once, never stored). A token of the same name
    is replaced, so a script that asks again rotates its own token."""
    name = name.strip()
    if not name or len(name) > 80:
        raise TokenRefused("A token needs a name of 1 to 80 characters.")
    key = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        ApiToken.objects.filter(user=user, expires_at__lte=now).delete()
        ApiToken.objects.filter(user=user, name=name).delete()
        if ApiToken.objects.filter(user=user).count() >= MAX_TOKENS_PER_USER:
            raise TokenRefused(f"At most {MAX_TOKENS_PER_USER} tokens per user: revoke one first.")
        token = ApiToken.objects.create(
            user=user, name=name, key_hash=hash_key(key), prefix=key[:8], created_at=now,
            expires_at=now + datetime.timedelta(days=settings.PACS_TOKEN_DAYS),
        )
    return token, key


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` against ApiToken; a bad, expired or revoked key is a 401,
    journaled as a failed login."""

    keyword = "Token"

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            record(Action.LOGIN_FAILED, request=request._request, user=None, target="API token",
                   outcome=Outcome.FAILURE, detail="invalid, expired or revoked token")
            raise

    def authenticate_credentials(self, key):
        now = timezone.now()
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Invalid or expired token.")
        if token.expires_at <= now:
            token.delete()
            raise AuthenticationFailed("Invalid or expired token.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
