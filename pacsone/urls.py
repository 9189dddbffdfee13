"""The root URL map: the archive's pages (pacsone/web/urls.py), the REST API
(pacsone/api/urls.py), and the pages of the accounts, journal and job apps."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("journal/", include("audit.urls")),
    path("jobs/", include("routing.urls")),
    path("api/", include("pacsone.api.urls")),
    path("", include("pacsone.dicomweb.urls")),  # /dicomweb/, /wado, /viewer/
    path("", include("pacsone.web.urls")),
]
