"""A user whose password has expired may only change it or log out."""

from django.shortcuts import redirect
from django.urls import reverse

from .policy import password_expired

ALWAYS_ALLOWED_PREFIXES = ("/static/", "/healthz", "/api/")  # the API answers 403 itself


class PasswordExpiryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and password_expired(request.user):
            allowed = {reverse("password_change"), reverse("logout")}
            if request.path not in allowed and not request.path.startswith(ALWAYS_ALLOWED_PREFIXES):
                return redirect(f"{reverse('password_change')}?expired=1")
        return self.get_response(request)
