"""Job status pages: a user sees their own jobs; System Administration sees everyone's. Jobs
are reached through pacsone.access: titles name no patient, a job's message shows only to those
who may see its studies, and its result downloads only for its owner."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, JsonResponse
from django.shortcuts import render

from audit.journal import Action, record
from pacsone.access import access_job, access_job_result, jobs_for, shown_job

from .models import Job

JOBS_PER_PAGE = 50


def job_json(job: Job) -> dict:
    return {
        "id": job.pk, "kind": job.kind, "title": job.title, "state": job.state, "done": job.done,
        "total": job.total, "failed": job.failed, "percent": job.percent, "message": job.message,
        "finished": job.finished, "has_result": bool(job.result_path),
    }


@login_required
def job_list(request):
    jobs = jobs_for(request.user)
    state = request.GET.get("state", "")
    if state in Job.State.values:
        jobs = jobs.filter(state=state)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = [shown_job(request.user, job) for job in page.object_list]
    return render(request, "routing/job_list.html", {"page": page, "states": Job.State.choices, "state": state})


@login_required
def job_detail(request, pk):
    job = access_job(request, pk)
    return render(request, "routing/job_detail.html", {"job": job, "initial": job_json(job)})


@login_required
def job_status(request, pk):
    return JsonResponse(job_json(access_job(request, pk)))


@login_required
def job_result(request, pk):
    job, path = access_job_result(request, pk)
    record(Action.DOWNLOAD, request=request, target=f"job {job.pk} result", detail=job.title)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)
