"""REST: jobs (a user's own; System Administration sees all)."""

from rest_framework import serializers, viewsets

from .models import Job
from .views import jobs_of


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
    queryset = Job.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self):
        jobs = jobs_of(self.request.user)
        for name in ("state", "kind"):
            if value := self.request.query_params.get(name):
                jobs = jobs.filter(**{name: value})
        return jobs
