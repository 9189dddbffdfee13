"""The REST API under /api/ (DESIGN.md "REST API"): one router; each app registers its
viewsets here. Session and token authentication; OpenAPI schema at /api/schema/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from audit import api as audit_api
from hl7 import api as hl7_api
from routing import api as routing_api

from . import archive as archive_api

router = DefaultRouter()
router.register("users", accounts_api.UserViewSet, basename="user")
router.register("groups", accounts_api.GroupViewSet, basename="group")
router.register("patients", archive_api.PatientViewSet, basename="patient")
router.register("studies", archive_api.StudyViewSet, basename="study")
router.register("journal", audit_api.EntryViewSet, basename="journal")
router.register("jobs", routing_api.JobViewSet, basename="job")
router.register("routing-rules", routing_api.RoutingRuleViewSet, basename="routing-rule")
router.register("hl7/messages", hl7_api.MessageViewSet, basename="hl7-message")
router.register("hl7/destinations", hl7_api.DestinationViewSet, basename="hl7-destination")
router.register("hl7/reports", hl7_api.ReportViewSet, basename="hl7-report")
router.register("worklist", hl7_api.WorklistViewSet, basename="worklist")

urlpatterns = [
    path("auth/token/", accounts_api.obtain_token, name="api-token"),
    path("statistics/", archive_api.statistics, name="api-statistics"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Interactive documentation; the split view loads its start-up script as a file (our CSP
    # allows no inline script).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
]
