"""Error pages (400, 403, 404, 413, 414, 500): styled like every page, with the menu and a way
back, saying what happened in words and never showing a traceback or a server path.

Django's own 400 and 500 handlers render without the request (no menu); these render with it,
and the 500 page falls back to the bare template if that fails too (the database may be what
broke). A request line longer than MAX_REQUEST_LINE is answered 414 here (gunicorn passes
lines up to its head limit to us: pacsone/gunicorn_worker.py), and a form body over Django's
limit is 413."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.template import loader
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)

# Longer request lines than browsers and proxies commonly pass (8 kB) are refused.
MAX_REQUEST_LINE = 8 * 1024

PAGES = {
    400: (_("Bad request"), _("The server could not understand this request. Go back and try again.")),
    403: (_("Not allowed"), _("Your account does not have the privilege this page or action needs. "
                              "Ask your administrator if you need it.")),
    404: (_("Page not found"), _("There is nothing at this address, or it is not something you may see.")),
    413: (_("Too large"), _("What was sent is larger than this server accepts in one request.")),
    414: (_("Address too long"), _("The address of this request is too long for the server. "
                                   "Search with fewer or shorter terms.")),
    500: (_("Something went wrong"), _("The server failed to answer this request. The error has been logged; "
                                       "try again in a moment, and tell your administrator if it goes on.")),
}


def error_page(request, status: int, detail: str = "") -> HttpResponse:
    title, explanation = PAGES[status]
    context = {"status": status, "title": title, "explanation": explanation, "detail": detail}
    try:
        body = loader.render_to_string("error.html", context, request=request)
    except Exception:
        # The menu needs the user (the database); without it the page still explains itself.
        log.exception("error page rendered without the request status=%s", status)
        body = loader.render_to_string("error.html", context)
    return HttpResponse(body, status=status)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return error_page(request, 413)
    return error_page(request, 400)


def permission_denied(request, exception=None):
    # The reason names a missing privilege (accounts.privileges), never patient data.
    reason = str(exception or "")
    return error_page(request, 403, reason[:200] if reason else "")


def page_not_found(request, exception=None):
    return error_page(request, 404)


def server_error(request):
    return error_page(request, 500)


class LongRequestLineMiddleware:
    """A styled 414 for a request line too long to serve (rather than the web server's bare
    "Request Line is too large")."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        line = len(request.method) + len(request.get_full_path()) + len(" HTTP/1.1") + 1
        if line > MAX_REQUEST_LINE:
            log.info("request line too long length=%d path=%s", line, request.path[:80])
            return error_page(request, 414, _("The address is %(length)s characters long; at most %(limit)s are "
                                              "accepted.") % {"length": f"{line:,}", "limit": f"{MAX_REQUEST_LINE:,}"})
        return self.get_response(request)
