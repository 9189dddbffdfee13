"""REST: jobs (a user's own; System Administration sees all), through pacsone.access: a job's
message shows only to those who may see its studies."""

from rest_framework import serializers, viewsets
from rest_framework.response import Response

from pacsone.access import access_job, jobs_for, shown_job

from .models import Job


class JobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None, read_only=True)
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = Job
        fields = ["id", "kind", "state", "title", "owner", "done", "total", "failed", "percent", "message",
                  "created_at", "started_at", "finished_at"]


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Filter: `state` (queued, running, done, failed), `kind`."""

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
