"""Who is asking: the browser's session (OHIF on our own pages), an API token
(`Authorization: Token <key>` or `Bearer <key>`, accounts/tokens.py) or HTTP Basic (viewers and
scripts that know only that). No credentials is a 401 with a Basic challenge; a bad token or
password is a 401 too, journaled as a failed login (a bad password also counts towards the
lockout, django-axes). A session request that changes something (STOW) must carry the CSRF
token, as every form does; token and Basic requests cannot be forged by another site's page.
"""

import base64
import binascii
import functools

from django.contrib.auth import authenticate
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import AuthenticationFailed

from accounts.policy import password_expired
from accounts.tokens import ApiTokenAuthentication
from audit.journal import Action, Outcome, record

REALM = 'Basic realm="PacsOne DICOMweb", charset="UTF-8"'
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Unauthorized(Exception):
    """No usable credentials; the message says why."""


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def unauthorized(message: str) -> HttpResponse:
    response = _text(401, message)
    response["WWW-Authenticate"] = REALM
    return response


def _token_user(key: str):
    try:
        user, _token = ApiTokenAuthentication().authenticate_credentials(key)
    except AuthenticationFailed:
        raise Unauthorized("Invalid or expired token.") from None
    return user


def _basic_user(request, encoded: str):
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Malformed Basic credentials.") from None
    user = authenticate(request, username=username, password=password)  # journals a failure
    if user is None or not user.is_active:
        raise Unauthorized("Wrong user name or password, or the account is locked.")
    return user


def credentials_user(request):
    """The user named by the Authorization header, None if there is none; Unauthorized if it
    names nobody."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not header:
        return None
    if scheme in ("token", "bearer") and value:
        user = _token_user(value)
        return user
    if scheme == "basic" and value:
        return _basic_user(request, value)
    raise Unauthorized("Unsupported Authorization scheme: use Token, Bearer or Basic.")


def dicomweb_view(view):
    """Authenticate (session, token, Basic), refuse expired passwords, check CSRF for a session's
    unsafe requests, then call the view with `request.user` set."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            user = credentials_user(request)
        except Unauthorized as refusal:
            if request.META.get("HTTP_AUTHORIZATION", "").lower().startswith(("token", "bearer")):
                record(Action.LOGIN_FAILED, request=request, user=None, target="DICOMweb token",
                       outcome=Outcome.FAILURE, detail="invalid, expired or revoked token")
            return unauthorized(str(refusal))
        if user is not None:
            request.user = user
        elif request.user.is_authenticated:
            if request.method not in SAFE_METHODS:
                refused = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
                if refused is not None:
                    return refused
        else:
            return unauthorized("Log in: a session, an API token or HTTP Basic.")
        if password_expired(request.user):
            return _text(403, "The password has expired: change it on the web page first.")
        return view(request, *args, **kwargs)

    return wrapper
