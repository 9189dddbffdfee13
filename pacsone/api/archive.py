"""REST: patients and studies, through the one visibility rule and the one privilege check.

Studies and patients are reached through pacsone.access: one the caller may not see is a 404
(journaled), in lists it is simply absent. PATCH `public` needs Modify (a patient's needs View
as well: it reaches all its studies), PATCH `read` needs Mark Study; every list, read and
change is journaled (changes by the `do_*` functions, in their transaction).
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.api_permissions import privilege_permission
from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from ..access import access_patient, access_study, patients_for, studies_for
from ..actions import do_mark_study, do_set_patient_public, do_set_study_public
from ..models import Patient, Study
from ..query_limits import QueryTimeout, time_limited
from ..stats import cached_archive_stats, period_figures
from ..stats_days import BY_CHOICES
from ..stats_periods import PRESETS, PeriodForm
from ..study_search import search_studies

PATIENT_FILTERS = ("patient_id", "patient_name")


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "patient_id", "issuer_of_patient_id", "patient_name", "birth_date", "sex", "public"]
        read_only_fields = ["id", "patient_id", "issuer_of_patient_id", "patient_name", "birth_date", "sex"]


class StudySerializer(serializers.ModelSerializer):
    patient = PatientSerializer(read_only=True)

    class Meta:
        model = Study
        fields = ["study_instance_uid", "patient", "study_date", "study_time", "accession_number", "study_id",
                  "study_description", "referring_physician_name", "reading_physician_name", "institution_name",
                  "modalities_in_study", "number_of_series", "number_of_instances", "size_bytes", "public", "read",
                  "source_ae", "received_at"]
        read_only_fields = [f for f in fields if f not in ("public", "read")]


# Which privilege each writable field needs, and the journal action its change records.
WRITABLE = {"public": (Privilege.MODIFY, Action.MODIFY), "read": (Privilege.MARK_STUDY, Action.MARK)}


def _checked_changes(request, allowed: tuple[str, ...]) -> dict[str, bool]:
    """The fields a PATCH asks to change: only `allowed` ones, booleans, with their privilege."""
    unknown = sorted(set(request.data) - set(allowed))
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    changes = {}
    for name in allowed:
        if name not in request.data:
            continue
        value = request.data[name]
        if not isinstance(value, bool):
            raise ValidationError({name: "Must be true or false."})
        privilege, _ = WRITABLE[name]
        if not has_privilege(request.user, privilege):
            raise PermissionDenied(f"Changing {name} needs the {privilege.label} privilege.")
        changes[name] = value
    return changes


class SearchTooSlow(APIException):
    status_code = 503
    default_code = "search_too_slow"


def _searched(queryset, params):
    """Studies filtered by the search parameters; a refused parameter is a 400."""
    studies, problems = search_studies(queryset, params)
    if problems:
        raise ValidationError(problems)
    return studies


class JournaledReadMixin:
    """List = a search (under the query time bound: past it, a 503 that says so), retrieve =
    a view; both journaled with what was asked."""

    def list(self, request, *args, **kwargs):
        try:
            with time_limited():
                response = super().list(request, *args, **kwargs)
        except QueryTimeout as timeout:
            raise SearchTooSlow(str(timeout)) from None
        record(Action.SEARCH, request=request._request, target=f"api {self.basename} list",
               detail=request.query_params.urlencode()[:1000])
        return response

    def get_object(self):
        """The one object, through pacsone.access (404 and journaled when hidden or missing)."""
        return self.access(self.request, self.kwargs[self.lookup_url_kwarg or self.lookup_field])

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        record(Action.VIEW, request=request._request, **self.journal_subject(obj))
        return Response(self.get_serializer(obj).data)


class PatientViewSet(JournaledReadMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Patients the caller may see. Filters: `patient_id`, `patient_name` (wildcards * and ?)."""

    serializer_class = PatientSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def access(self, request, pk):
        return access_patient(request, pk, action=Action.MODIFY if request.method == "PATCH" else Action.VIEW)

    def get_queryset(self):
        patients = patients_for(self.request.user).order_by("patient_name", "id")
        params = {k: self.request.query_params.get(k, "") for k in PATIENT_FILTERS}
        if any(params.values()):
            visible = _searched(studies_for(self.request.user), params)
            patients = patients.filter(studies__in=visible).distinct()
        return patients

    def journal_subject(self, patient):
        return {"patient_id": patient.patient_id, "target": f"patient {patient.pk}"}

    def partial_update(self, request, *args, **kwargs):
        patient = self.get_object()
        changes = _checked_changes(request, ("public",))
        if "public" in changes:
            do_set_patient_public(patient, changes["public"], acting_user=request.user, request=request)
        return Response(self.get_serializer(patient).data)


class StudyViewSet(JournaledReadMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Studies the caller may see, newest first. Filters: `patient_id`, `patient_name`
    (wildcards), `accession_number`, `study_date` (YYYYMMDD or a range A-B, -B, A-),
    `date_from`/`date_to`, `modality`, `referring_physician`, `source_ae`, `read`, `public`."""

    serializer_class = StudySerializer
    lookup_field = "study_instance_uid"
    lookup_value_regex = r"[0-9.]+"
    http_method_names = ["get", "patch", "head", "options"]

    def access(self, request, study_uid):
        return access_study(request, study_uid, action=Action.MODIFY if request.method == "PATCH" else Action.VIEW)

    def get_queryset(self):
        studies = studies_for(self.request.user)
        if self.action == "list":
            studies = _searched(studies, self.request.query_params)
        return studies.order_by("-study_date", "-id")

    def journal_subject(self, study):
        return {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}

    def partial_update(self, request, *args, **kwargs):
        study = self.get_object()
        changes = _checked_changes(request, ("public", "read"))
        if "public" in changes:
            do_set_study_public(study, changes["public"], acting_user=request.user, request=request)
        if "read" in changes:
            do_mark_study(study, changes["read"], acting_user=request.user, request=request)
        return Response(self.get_serializer(study).data)


@extend_schema(
    parameters=[
        OpenApiParameter("from", str, description="First day, YYYY-MM-DD or YYYYMMDD (with `to`)."),
        OpenApiParameter("to", str, description="Last day, included."),
        OpenApiParameter("by", str, enum=list(BY_CHOICES), description="Bucket of the timeline (default day)."),
        OpenApiParameter("preset", str, enum=list(PRESETS), description="A period instead of from/to."),
    ],
    responses={200: inline_serializer("Statistics", {
        **{name: serializers.IntegerField() for name in ("patients", "studies", "series", "instances", "bytes")},
        "statistics": serializers.DictField(help_text="The period's figures: period, totals, timeline, by_modality, "
                                            "by_source_ae, by_institution, by_referring_physician, busiest_hours, "
                                            "storage, failures."),
    })},
)
@api_view(["GET"])
@permission_classes([privilege_permission(Privilege.MONITOR)])
def statistics(request):
    """What the whole archive holds (Monitor privilege): the figures of `archivestats`; and under
    `statistics` those of a period (default: the last 30 days by day), as on the statistics page."""
    form = PeriodForm.from_query(request.query_params)
    if not form.is_valid():
        raise ValidationError(form.problems())
    return Response({**cached_archive_stats(), "statistics": period_figures(form.period)})
