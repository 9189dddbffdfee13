"""The root URL map: the archive's pages (pacsone/web/urls.py), the REST API
(pacsone/api/urls.py), and the pages of the accounts, journal, job and HL7 apps."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("journal/", include("audit.urls")),
    path("jobs/", include("routing.urls")),
    path("hl7/", include("hl7.urls")),
    path("api/", include("pacsone.api.urls")),
    path("", include("pacsone.web.urls")),
]
