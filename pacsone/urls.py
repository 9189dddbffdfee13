"""The root URL map: the archive's pages (pacsone/web/urls.py), the REST API
(pacsone/api/urls.py), and the pages of the accounts, journal, job and HL7 apps."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("journal/", include("audit.urls")),
    path("jobs/", include("routing.urls")),
    path("routing/", include("routing.rule_urls")),
    path("hl7/", include("hl7.urls")),
    path("api/", include("pacsone.api.urls")),
    path("", include("pacsone.dicomweb.urls")),  # /dicomweb/, /wado, /viewer/
    path("", include("pacsone.web.urls")),
]

# Styled error pages with the menu (pacsone/web/errors.py).
handler400 = "pacsone.web.errors.bad_request"
handler403 = "pacsone.web.errors.permission_denied"
handler404 = "pacsone.web.errors.page_not_found"
handler500 = "pacsone.web.errors.server_error"
