"""REST: the system journal, read-only (System Administration)."""

from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError

from accounts.api_permissions import privilege_permission
from accounts.privileges import Privilege

from .filters import filter_entries
from .journal import Action, record
from .models import Entry


class EntrySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username")

    class Meta:
        model = Entry
        fields = ["id", "timestamp", "user", "address", "ae_title", "action", "patient_id", "study_uid",
                  "target", "outcome", "detail", "previous_hash", "hash"]


class EntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Filters: `user`, `action`, `outcome`, `patient_id`, `study_uid`, `date_from`, `date_to` (YYYY-MM-DD)."""

    serializer_class = EntrySerializer
    permission_classes = [privilege_permission(Privilege.SYSTEM_ADMIN)]

    def get_queryset(self):
        entries, problems = filter_entries(self.request.query_params)
        if problems:
            raise ValidationError(problems)
        return entries.order_by("-id")

    # Reading the journal is itself journaled (who looked at whose accesses).
    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        record(Action.VIEW, request=request._request, target="api journal list",
               detail=request.query_params.urlencode()[:1000])
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        record(Action.VIEW, request=request._request, target=f"api journal entry {kwargs.get('pk', '')}"[:255])
        return response
