"""The URL map: each app brings its own urls module."""

from django.urls import include, path

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("journal/", include("audit.urls")),
    path("api/", include("pacsone.api_urls")),
    path("", include("pacsone.web_urls")),
]
