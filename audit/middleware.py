"""Every 403 is journaled (outcome denied), once, and without a traceback in the log.

A page that raises PermissionDenied (the privilege check) is answered here with the usual 403
page, so Django does not log the exception with its traceback; a 403 answered otherwise (the
REST API's permissions, a CSRF failure) is journaled on its way out. A refusal the access
functions already journaled (pacsone.access marks the request) is not journaled twice.
"""

from django.core.exceptions import PermissionDenied
from django.urls import get_resolver, get_urlconf

from .journal import Action, Outcome, record

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class JournalDenialsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403 and not getattr(request, "denial_journaled", False):
            data = getattr(response, "data", None)  # a REST answer says why
            reason = data.get("detail", "") if isinstance(data, dict) else ""
            _journal(request, str(reason) or "forbidden")
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, PermissionDenied):
            return None
        if not getattr(request, "denial_journaled", False):
            _journal(request, str(exception) or "permission denied")
        handler = get_resolver(get_urlconf()).resolve_error_handler(403)
        return handler(request, exception=exception)


def _journal(request, reason: str) -> None:
    action = Action.VIEW if request.method in SAFE_METHODS else Action.MODIFY
    record(action, request=request, target=request.path[:255], outcome=Outcome.DENIED, detail=f"403: {reason}"[:500])
    request.denial_journaled = True
