"""REST: jobs (a user's own; System Administration sees all), through pacsone.access: a job's
message shows only to those who may see its studies; retry and cancel. Routing rules (System
Administration), changed through routing.rules like the pages."""

from django.db import transaction
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_permissions import privilege_permission
from accounts.privileges import Privilege
from pacsone.access import access_job, job_contents_visible, jobs_for, shown_job
from pacsone.models import RemoteAE

from .control import do_cancel_jobs, do_retry_jobs
from .matching import RuleError
from .models import Job, RoutingRule
from .rules import do_remove_rule, do_save_rule


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None, read_only=True)
    percent = serializers.IntegerField(read_only=True)
    state_text = serializers.CharField(read_only=True)
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "state", "state_text", "title", "owner", "done", "total", "failed", "percent",
                  "message", "last_error", "attempts", "max_attempts", "next_attempt_at", "created_at", "started_at",
                  "finished_at"]

    def get_last_error(self, job) -> str:
        user = self.context["request"].user
        return job.last_error if job_contents_visible(user, job) else ("(hidden)" if job.last_error else "")


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Filter: `state` (queued, waiting, running, done, failed, cancelled), `kind`. POST
    `/api/jobs/{id}/retry/` (failed or cancelled) and `/api/jobs/{id}/cancel/` (unfinished)."""

    serializer_class = JobSerializer

    def get_queryset(self):
        jobs = jobs_for(self.request.user)
        for name in ("state", "kind"):
            if value := self.request.query_params.get(name):
                jobs = jobs.filter(**{name: value})
        return jobs

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        jobs = [shown_job(request.user, job) for job in page]
        return self.get_paginated_response(self.get_serializer(jobs, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(access_job(request, self.kwargs["pk"])).data)

    def _change(self, request, pk, change):
        job = access_job(request, pk)
        changed = change([job], acting_user=request.user, request=request)
        if not changed:
            return Response({"detail": f"job {job.pk} is {job.state}: nothing to do"}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(access_job(request, pk)).data)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._change(request, pk, do_retry_jobs)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._change(request, pk, do_cancel_jobs)


class RoutingRuleSerializer(serializers.ModelSerializer):
    destinations = serializers.SlugRelatedField(slug_field="ae_title", many=True, queryset=RemoteAE.objects.all())

    class Meta:
        model = RoutingRule
        fields = ["id", "name", "enabled", "priority", "source_ae_pattern", "match_keyword", "match_pattern",
                  "destinations", "schedule", "window_from", "window_to", "daily_at", "each_instance", "auto_purge",
                  "max_attempts", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class RoutingRuleViewSet(viewsets.ModelViewSet):
    """The routing table (System Administration). Match either `source_ae_pattern` or
    `match_keyword` + `match_pattern` (`*`, `?`); `schedule`: immediately, window (`window_from`,
    `window_to`, may cross midnight) or daily (`daily_at`). Every change is journaled."""

    serializer_class = RoutingRuleSerializer
    permission_classes = [privilege_permission(Privilege.SYSTEM_ADMIN)]
    queryset = RoutingRule.objects.prefetch_related("destinations")

    def _save(self, serializer, instance=None):
        data = dict(serializer.validated_data)
        destinations = data.pop("destinations", None)
        rule = instance or RoutingRule()
        for name, value in data.items():
            setattr(rule, name, value)
        if destinations is None:
            destinations = list(rule.destinations.all()) if rule.pk else []
        try:
            with transaction.atomic():
                do_save_rule(rule, destinations, acting_user=self.request.user, request=self.request)
        except RuleError as error:
            raise ValidationError({"detail": str(error)}) from None
        serializer.instance = rule

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        do_remove_rule(instance, acting_user=self.request.user, request=self.request)
