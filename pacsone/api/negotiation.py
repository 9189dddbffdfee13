"""The browsable API (DRF's HTML pages) only for logged-in users: an anonymous caller gets
JSON whatever it asks for, so the API shows no page, form or endpoint list without a login."""

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer


class BrowsableOnlyWhenLoggedIn(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if request.user.is_authenticated:
            return super().select_renderer(request, renderers, format_suffix)
        renderers = [r for r in renderers if not isinstance(r, BrowsableAPIRenderer)]
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:  # asked for HTML only: the refusal comes as JSON
            return renderers[0], renderers[0].media_type
