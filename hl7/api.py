"""REST: the HL7 message log (and re-processing), the destinations, the worklist. System
Administration, as the pages."""

from django.db.models import Q
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_permissions import privilege_permission
from accounts.privileges import Privilege
from audit.journal import Action, record

from .destinations import DestinationError, do_add_destination, do_change_destination, do_remove_destination
from .inbound import reprocess
from .models import Destination, Message, ScheduledStep

SystemAdministration = privilege_permission(Privilege.SYSTEM_ADMIN)


class JournaledList:
    """Reading patient data (messages, worklist entries, reports) is journaled, as on the pages."""

    journal_target = ""

    def list(self, request, *args, **kwargs):
        record(Action.VIEW, request=request._request, user=request.user, target=self.journal_target,
               detail=request.query_params.urlencode()[:1000])
        return super().list(request, *args, **kwargs)


class JournaledReads(JournaledList):
    def retrieve(self, request, *args, **kwargs):
        record(Action.VIEW, request=request._request, user=request.user,
               target=f"{self.journal_target} {kwargs.get('pk', '')}"[:255])
        return super().retrieve(request, *args, **kwargs)


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "received_at", "peer", "message_type", "control_id", "sending_application", "patient_id",
                  "accession_number", "charset", "status", "reason", "text", "ack", "reprocessed"]


def search_messages(params) -> "Message.objects":
    """The log filtered as the page and the API filter it: `q` (any text of the message),
    `status`, `type`, `patient_id`, `control_id`, `accession_number`."""
    messages = Message.objects.all()
    if q := (params.get("q") or "").strip():
        messages = messages.filter(Q(text__icontains=q) | Q(reason__icontains=q) | Q(control_id=q))
    if value := params.get("status"):
        messages = messages.filter(status=value)
    if value := params.get("type"):
        messages = messages.filter(message_type__istartswith=value)
    for name in ("patient_id", "control_id", "accession_number"):
        if value := params.get(name):
            messages = messages.filter(**{name: value})
    return messages


class MessageViewSet(JournaledReads, viewsets.ReadOnlyModelViewSet):
    """Filters: `q`, `status` (applied, failed, rejected), `type` (e.g. ADT^A08), `patient_id`,
    `control_id`, `accession_number`. POST `{id}/reprocess/` applies a logged message again."""

    serializer_class = MessageSerializer
    permission_classes = [SystemAdministration]
    journal_target = "HL7 message log"

    def get_queryset(self):
        return search_messages(self.request.query_params)

    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        message = reprocess(self.get_object(), acting_user=request.user, request=request._request)
        return Response(self.get_serializer(message).data)


class DestinationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Destination
        fields = ["id", "name", "host", "port", "events", "receiving_application", "receiving_facility", "enabled",
                  "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"name": {"validators": []}}  # do_add_destination says it clearly


class DestinationViewSet(viewsets.ModelViewSet):
    """HL7 destinations; `events` is a comma-separated list of received, read, mpps."""

    serializer_class = DestinationSerializer
    permission_classes = [SystemAdministration]
    queryset = Destination.objects.all()

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        try:
            destination = do_add_destination(values.pop("name"), values.pop("host"), values.pop("port"),
                                             values.pop("events", "received"), acting_user=request.user,
                                             request=request._request, **values)
        except DestinationError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response(self.get_serializer(destination).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        destination = self.get_object()
        serializer = self.get_serializer(destination, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        try:
            destination = do_change_destination(destination, acting_user=request.user, request=request._request,
                                                **serializer.validated_data)
        except DestinationError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response(self.get_serializer(destination).data)

    def destroy(self, request, *args, **kwargs):
        do_remove_destination(self.get_object(), acting_user=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorklistSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScheduledStep
        fields = ["id", "state", "accession_number", "placer_order_number", "filler_order_number",
                  "requested_procedure_id", "requested_procedure_description", "study_instance_uid", "patient_id",
                  "issuer_of_patient_id", "patient_name", "birth_date", "sex", "step_id", "modality",
                  "station_ae_title", "station_name", "start_date", "start_time", "description",
                  "performing_physician_name", "referring_physician_name", "study", "created_at", "updated_at"]


def search_worklist(params):
    """Filters: `state`, `modality`, `station_ae_title`, `accession_number`, `patient_id`, `date` (YYYYMMDD)."""
    steps = ScheduledStep.objects.all()
    for name in ("state", "modality", "station_ae_title", "accession_number", "patient_id"):
        if value := params.get(name):
            steps = steps.filter(**{name: value})
    if value := params.get("date"):
        steps = steps.filter(start_date=value)
    return steps


class WorklistViewSet(JournaledReads, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The modality worklist's scheduled procedure steps and their state."""

    serializer_class = WorklistSerializer
    permission_classes = [SystemAdministration]
    journal_target = "modality worklist"

    def get_queryset(self):
        return search_worklist(self.request.query_params)


REPORT_AUTHOR_PREFIX = "Report"  # hl7.handlers.do_report names its notes "Report (F) from RIS"


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study_instance_uid = serializers.CharField(source="study.study_instance_uid")
    accession_number = serializers.CharField(source="study.accession_number")
    patient_id = serializers.CharField(source="study.patient.patient_id")
    author_name = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReportViewSet(JournaledList, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Reports received by ORU^R01 (study notes without an author account), on the studies the
    user may see. Filters: `q` (text), `study` (Study Instance UID), `accession_number`."""

    serializer_class = ReportSerializer
    journal_target = "HL7 reports"

    def get_queryset(self):
        from pacsone.access import notes_for

        notes = notes_for(self.request.user).filter(author__isnull=True, author_name__startswith=REPORT_AUTHOR_PREFIX)
        notes = notes.select_related("study__patient").order_by("-created_at", "-id")
        if q := (self.request.query_params.get("q") or "").strip():
            notes = notes.filter(text__icontains=q)
        if value := self.request.query_params.get("study"):
            notes = notes.filter(study__study_instance_uid=value)
        if value := self.request.query_params.get("accession_number"):
            notes = notes.filter(study__accession_number=value)
        return notes
