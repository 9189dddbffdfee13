"""The journal pages (System Administration): filter, page through, export CSV; and the
e-mail server every mail goes through (pacsone/mail.py), with its test e-mail."""

import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.privileges import Privilege, privilege_required
from pacsone.mail import do_set_mail_server, send_test_message
from pacsone.access import journal_subjects

from .filters import filter_entries
from .forms import MailServerForm
from .journal import Action, Outcome, record
from .models import MailServer
from .report import csv_lines

ENTRIES_PER_PAGE = 100


ACTIVITY_DAYS = 30


def daily_activity(entries, days: int = ACTIVITY_DAYS) -> list[dict]:
    """Entries and failures per day for the last `days` days, for the activity chart."""
    today = timezone.localdate()
    first = today - datetime.timedelta(days=days - 1)
    since = timezone.make_aware(datetime.datetime.combine(first, datetime.time.min))
    rows = (
        entries.filter(timestamp__gte=since)
        .annotate(day=TruncDate("timestamp"))
        .values("day")
        .annotate(total=Count("id"), failed=Count("id", filter=~Q(outcome="success")))
    )
    by_day = {row["day"]: row for row in rows}
    peak = max([row["total"] for row in rows] + [1])
    chart = []
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        row = by_day.get(day, {"total": 0, "failed": 0})
        chart.append({
            "day": day, "total": row["total"], "failed": row["failed"],
            "height": round(100 * row["total"] / peak), "failed_height": round(100 * row["failed"] / peak),
        })
    return chart


@privilege_required(Privilege.SYSTEM_ADMIN)
def journal(request):
    entries, problems = filter_entries(request.GET)
    page = Paginator(entries.order_by("-id"), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = journal_subjects(request.user, list(page.object_list))
    # Reading the journal is itself journaled (who looked at whose accesses).
    record(Action.VIEW, request=request, target="journal", detail=request.GET.urlencode()[:1000])
    return render(request, "audit/journal.html", {
        "activity": daily_activity(entries),
        "page": page,
        "problems": problems,
        "actions": Action.choices,
        "outcomes": Outcome.choices,
        "params": request.GET,
    })


@privilege_required(Privilege.SYSTEM_ADMIN)
def journal_csv(request):
    entries, problems = filter_entries(request.GET)
    if problems:
        messages.error(request, "; ".join(problems.values()))
        return redirect("audit:journal")
    record(Action.EXPORT, request=request, target="journal CSV", detail=request.GET.urlencode())
    response = StreamingHttpResponse(csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="journal.csv"'
    return response


@privilege_required(Privilege.SYSTEM_ADMIN)
def mail_settings(request):
    server = MailServer.current()
    form = MailServerForm(request.POST or None, instance=MailServer.current())
    if request.method == "POST" and form.is_valid():
        values = form.changed_values()
        do_set_mail_server(values, acting_user=request.user, request=request,
                           keep_password=not form.cleaned_data.get("forget_password"))
        messages.success(request, "E-mail settings saved.")
        return redirect("audit:mail-settings")
    return render(request, "audit/mail_settings.html", {"form": form, "server": server})


@privilege_required(Privilege.SYSTEM_ADMIN)
@require_POST
def mail_test(request):
    """Send the test e-mail now and show the SMTP server's answer (or the error in words)."""
    sent, answer = send_test_message(acting_user=request.user, request=request)
    if sent:
        messages.success(request, f"Test e-mail sent to {MailServer.current().administrators}. The server answered: {answer}")
    else:
        messages.error(request, f"The test e-mail was not sent: {answer}")
    return redirect("audit:mail-settings")
