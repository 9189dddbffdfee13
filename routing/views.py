"""Job status pages: a user sees their own jobs; System Administration sees everyone's."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, render

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, record

from .models import Job

JOBS_PER_PAGE = 50


def jobs_of(user):
    jobs = Job.objects.select_related("owner")
    return jobs if has_privilege(user, Privilege.SYSTEM_ADMIN) else jobs.filter(owner=user)


def job_json(job: Job) -> dict:
    return {
        "id": job.pk, "kind": job.kind, "title": job.title, "state": job.state, "done": job.done,
        "total": job.total, "failed": job.failed, "percent": job.percent, "message": job.message,
        "finished": job.finished, "has_result": bool(job.result_path),
    }


@login_required
def job_list(request):
    jobs = jobs_of(request.user)
    state = request.GET.get("state", "")
    if state in Job.State.values:
        jobs = jobs.filter(state=state)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "routing/job_list.html", {"page": page, "states": Job.State.choices, "state": state})


@login_required
def job_detail(request, pk):
    job = get_object_or_404(jobs_of(request.user), pk=pk)
    return render(request, "routing/job_detail.html", {"job": job, "initial": job_json(job)})


@login_required
def job_status(request, pk):
    return JsonResponse(job_json(get_object_or_404(jobs_of(request.user), pk=pk)))


@login_required
def job_result(request, pk):
    job = get_object_or_404(jobs_of(request.user), pk=pk)
    if not job.result_path:
        raise Http404("this job made nothing to download")
    path = (settings.DATA_DIR / job.result_path).resolve()
    if settings.DATA_DIR.resolve() not in path.parents or not path.is_file():
        raise Http404("the job's result is no longer there")
    record(Action.DOWNLOAD, request=request, target=f"job {job.pk} result", detail=job.title)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)
