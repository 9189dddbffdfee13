"""The statistics page (Monitor privilege): a period's figures from the index in charts and
tables, their CSV export, and the on-demand report e-mail (a job) for the same period."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record

from .. import humanize
from ..mail import NOT_CONFIGURED, current
from ..stats import period_figures
from ..stats_periods import PeriodForm
from ..stats_report import breakdown_tables, figures_csv, key_figures, start_report_job


def _chart_data(figures: dict) -> dict:
    """What statistics.js draws: labels and series, already in the words the page shows."""
    return {
        "by": figures["period"]["by"],
        "timeline": {"labels": [humanize.date(row["period"]) for row in figures["timeline"]],
                     **{key: [row[key] for row in figures["timeline"]] for key in ("studies", "series", "instances", "bytes")}},
        "modality": {"labels": [row["label"] for row in figures["by_modality"]],
                     "instances": [row["instances"] for row in figures["by_modality"]]},
        "source_ae": {"labels": [row["label"] for row in figures["by_source_ae"]],
                      "instances": [row["instances"] for row in figures["by_source_ae"]]},
        "hours": {"labels": [f"{row['hour']:02d}:00" for row in figures["busiest_hours"]],
                  "instances": [row["instances"] for row in figures["busiest_hours"]]},
        "storage": {"labels": [row["location"] for row in figures["storage"]],
                    "used": [row["used_bytes"] or 0 for row in figures["storage"]],
                    "free": [row["free_bytes"] or 0 for row in figures["storage"]]},
    }


@privilege_required(Privilege.MONITOR)
def statistics_page(request):
    form = PeriodForm.from_query(request.GET)
    context = {"form": form, "mail_problem": "" if current().configured else NOT_CONFIGURED}
    if form.is_valid():
        figures = period_figures(form.period)
        context.update(figures=figures, key_figures=key_figures(figures), tables=breakdown_tables(figures),
                       charts=_chart_data(figures), period_words=humanize.period(form.period.first, form.period.last),
                       query=request.GET.urlencode())
    return render(request, "pacsone/statistics.html", context, status=200 if form.is_valid() else 400)


@privilege_required(Privilege.MONITOR)
def statistics_csv(request):
    form = PeriodForm.from_query(request.GET)
    if not form.is_valid():
        return HttpResponse("; ".join(f"{field}: {problem}" for field, problem in form.problems().items()),
                            status=400, content_type="text/plain; charset=utf-8")
    period = form.period
    record(Action.EXPORT, request=request, target="statistics CSV", detail=str(period.as_dict()))
    response = HttpResponse(figures_csv(period_figures(period)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statistics-{period.first}-{period.last}.csv"'
    return response


@privilege_required(Privilege.MONITOR)
@require_POST
def statistics_report(request):
    """Mail the chosen period's report to the administrators now, as a job."""
    form = PeriodForm.from_query(request.POST)
    if not form.is_valid():
        messages.error(request, "The report was not sent: " + "; ".join(form.problems().values()))
        return redirect("statistics")
    job = start_report_job(form.period, "Statistics report", owner=request.user)
    messages.success(request, f"The report is being sent to the administrators (job {job.pk}).")
    return redirect("routing:job-detail", job.pk)
