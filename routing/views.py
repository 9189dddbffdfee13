"""Job status pages: a user sees their own jobs; System Administration sees everyone's. Jobs
are reached through pacsone.access: titles name no patient, a job's message and last error show
only to those who may see its studies, and its result downloads only for its owner. Failed or
cancelled jobs can be retried, unfinished ones cancelled, one or many at a time."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from audit.journal import Action, record
from pacsone.access import (access_job, access_job_result, job_contents_visible, jobs_for, shown_job,
                            with_shown_studies)
from pacsone.humanize import count

from .commitment import commitment_report
from .control import do_cancel_jobs, do_retry_jobs
from .models import Job

JOBS_PER_PAGE = 50


def visible_error(user, job: Job) -> str:
    return job.last_error if job_contents_visible(user, job) else ("(hidden)" if job.last_error else "")


def job_json(job: Job, user=None) -> dict:
    return {
        "id": job.pk, "kind": job.kind, "title": job.title, "state": job.state, "state_text": job.state_text,
        "done": job.done, "total": job.total, "failed": job.failed, "percent": job.percent, "message": job.message,
        "last_error": visible_error(user, job) if user is not None else "", "attempts": job.attempts,
        "max_attempts": job.max_attempts, "finished": job.finished, "has_result": bool(job.result_path),
        "next_attempt_at": job.next_attempt_at.isoformat() if job.next_attempt_at and not job.finished else None,
    }


def filtered_jobs(request):
    jobs = jobs_for(request.user)
    chosen = {"state": request.GET.get("state", ""), "kind": request.GET.get("kind", ""),
              "q": request.GET.get("q", "").strip()}
    if chosen["state"] == "unfinished":
        jobs = jobs.filter(state__in=Job.UNFINISHED)
    elif chosen["state"] in Job.State.values:
        jobs = jobs.filter(state=chosen["state"])
    if chosen["kind"] in Job.Kind.values:
        jobs = jobs.filter(kind=chosen["kind"])
    if chosen["q"]:
        jobs = jobs.filter(title__icontains=chosen["q"])
    return jobs, chosen


@login_required
def job_list(request):
    jobs, chosen = filtered_jobs(request)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = with_shown_studies(request.user, [shown_job(request.user, job) for job in page.object_list])
    for job in page.object_list:
        job.shown_error = visible_error(request.user, job)
    return render(request, "routing/job_list.html", {
        "page": page, "states": Job.State.choices, "kinds": Job.Kind.choices, "chosen": chosen,
        "state": chosen["state"], "query": request.GET.urlencode(),
    })


@login_required
def job_detail(request, pk):
    job = with_shown_studies(request.user, [access_job(request, pk)])[0]
    return render(request, "routing/job_detail.html", {
        "job": job, "initial": job_json(job, request.user), "shown_error": visible_error(request.user, job),
        "can_retry": job.state in (Job.State.FAILED, Job.State.CANCELLED), "can_cancel": not job.finished,
        # Per instance, it names what its studies hold: shown as its message is.
        "commitment": commitment_report(job) if job_contents_visible(request.user, job) else None,
    })


@login_required
def job_status(request, pk):
    return JsonResponse(job_json(access_job(request, pk), request.user))


@login_required
def job_result(request, pk):
    job, path = access_job_result(request, pk)
    record(Action.DOWNLOAD, request=request, target=f"job {job.pk} result", detail=job.title)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)


def _chosen_jobs(request, pks) -> list[Job]:
    """The jobs named in the form, each reached through access_job (404 for another's)."""
    return [access_job(request, pk, action=Action.CONFIGURATION) for pk in pks]


def _apply(request, action: str, pks) -> None:
    jobs = _chosen_jobs(request, pks)
    if action == "retry":
        done = do_retry_jobs(jobs, acting_user=request.user, request=request)
        messages.success(request, f"{count(len(done), 'job', 'jobs')} queued again." if done else "No failed or cancelled job chosen.")
    elif action == "cancel":
        done = do_cancel_jobs(jobs, acting_user=request.user, request=request)
        messages.success(request, f"{count(len(done), 'job', 'jobs')} cancelled." if done else "No unfinished job chosen.")
    else:
        messages.error(request, gettext("Choose Retry or Cancel."))


@require_POST
@login_required
def job_action(request, pk, action):
    _apply(request, action, [pk])
    return redirect("routing:job-detail", pk)


@require_POST
@login_required
def job_bulk(request):
    pks = request.POST.getlist("job")
    if not pks:
        messages.error(request, gettext("Tick the jobs first."))
    else:
        _apply(request, request.POST.get("action", ""), pks)
    back = request.POST.get("back", "")
    return redirect(f"/jobs/?{back}" if back and "//" not in back else "routing:job-list")
