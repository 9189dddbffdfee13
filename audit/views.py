"""The journal pages (System Administration): filter, page through, export CSV; and the
e-mail server used for the monthly journal report."""

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render

from accounts.privileges import Privilege, privilege_required

from .filters import filter_entries
from .forms import MailServerForm
from .journal import Action, Outcome, record
from .models import MailServer
from .report import CSV_COLUMNS

ENTRIES_PER_PAGE = 100


@privilege_required(Privilege.SYSTEM_ADMIN)
def journal(request):
    entries, problems = filter_entries(request.GET)
    page = Paginator(entries.order_by("-id"), ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "audit/journal.html", {
        "page": page,
        "problems": problems,
        "actions": Action.choices,
        "outcomes": Outcome.choices,
        "params": request.GET,
    })


class _Echo:
    def write(self, value):
        return value


@privilege_required(Privilege.SYSTEM_ADMIN)
def journal_csv(request):
    entries, problems = filter_entries(request.GET)
    if problems:
        messages.error(request, "; ".join(problems.values()))
        return redirect("audit:journal")
    record(Action.EXPORT, request=request, target="journal CSV", detail=request.GET.urlencode())
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for entry in entries.order_by("id").iterator(chunk_size=2000):
            yield writer.writerow([getattr(entry, column) for column in CSV_COLUMNS])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="journal.csv"'
    return response


@privilege_required(Privilege.SYSTEM_ADMIN)
def mail_settings(request):
    server = MailServer.current()
    form = MailServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        form.save()
        record(Action.CONFIGURATION, request=request, target="e-mail server",
               detail=f"host={form.instance.host} recipient={form.instance.recipient}")
        messages.success(request, "E-mail settings saved.")
        return redirect("audit:mail-settings")
    return render(request, "audit/mail_settings.html", {"form": form})
