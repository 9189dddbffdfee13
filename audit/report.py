"""The monthly journal report: last month's entries as CSV, mailed to the administrator when
an e-mail server is configured. Run by a django-q2 schedule (pacsone/schedules.py)."""

import csv
import datetime
import logging
from collections import Counter

from django.utils import timezone

from pacsone import humanize

from .journal import Action, current_head
from .models import Entry, MailServer

log = logging.getLogger(__name__)

# A cell a spreadsheet would read as a formula (or whose leading tab/CR it would drop) gets a
# leading apostrophe: a user name like `=HYPERLINK(...)` is shown, never evaluated.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ["id", "timestamp", "username", "address", "ae_title", "action", "patient_id",
               "study_uid", "target", "outcome", "detail", "hash"]


def previous_month(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """First day of last month and first day of this month."""
    this_month = today.replace(day=1)
    last_month = (this_month - datetime.timedelta(days=1)).replace(day=1)
    return last_month, this_month


class _Line:
    """A file for csv.writer whose write() hands the formatted line back."""

    def write(self, line: str) -> str:
        return line


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(entries):
    """The journal entries as CSV lines, oldest first, header first: streamed by the page's
    export and joined for the monthly mail."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries.order_by("id").iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(_shown(entry, column)) for column in CSV_COLUMNS])


def _shown(entry, column: str):
    """A CSV cell as the pages show it: the time in the one format of pacsone.humanize (server time
    zone, to the second), every other column as stored."""
    if column == "timestamp":
        return humanize.date_time(entry.timestamp, seconds=True)
    return getattr(entry, column)


def entries_csv(entries) -> str:
    return "".join(csv_lines(entries))


def send_monthly_report(today: datetime.date | None = None) -> str:
    from email.message import EmailMessage

    from pacsone.mail import MailError, deliver

    server = MailServer.current()
    if not server.configured:
        return "no e-mail server configured"
    start, end = previous_month(today or timezone.localdate())
    tz = timezone.get_current_timezone()
    entries = Entry.objects.filter(
        timestamp__gte=datetime.datetime.combine(start, datetime.time.min, tz),
        timestamp__lt=datetime.datetime.combine(end, datetime.time.min, tz),
    )
    counts = Counter(entries.values_list("action", flat=True))
    lines = [f"{Action(action).label if action in Action.values else action}: {count:,}"
             for action, count in sorted(counts.items())] or ["no entries"]
    head = current_head()
    # The head, kept in the mailbox: `verifyjournal --head ID:MAC` later proves nothing older was removed.
    head_text = (f"Journal chain head: {head.line()}\n(check later with: manage.py verifyjournal "
                 f"--head {head.entry_id}:{head.mac})\n") if head else "The journal is empty.\n"
    body = (f"PacsOne system journal, {start:%B %Y}.\n\n" + "\n".join(lines) + "\n\nThe entries are attached as CSV.\n\n"
            + head_text)
    message = EmailMessage()
    message["Subject"] = f"PacsOne journal {start:%Y-%m}"
    message.set_content(body)
    message.add_attachment(entries_csv(entries).encode(), maintype="text", subtype="csv",
                           filename=f"journal-{start:%Y-%m}.csv")
    try:
        answer = deliver(message, server=server)
    except MailError as error:
        log.warning("journal report not sent month=%s reason=%r", f"{start:%Y-%m}", error.reason)
        return f"not sent: {error.reason}"
    log.info("journal report sent month=%s entries=%d to=%s", f"{start:%Y-%m}", sum(counts.values()), server.administrators)
    return f"sent {sum(counts.values())} entries to {server.administrators} ({answer})"
