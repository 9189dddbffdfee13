"""The statistics of a period as people read them: as CSV (the page's export and the mail's
attachment), as text (`manage.py statsreport`), as a PNG chart drawn with Pillow, and as the
report e-mail (HTML with the chart inline by Content-ID, the CSV attached). The e-mail is sent
as a job (Job.Kind.REPORT): an SMTP server that is down or busy is tried again later, a refused
login or recipient or a missing configuration fails the job with the reason in words.

The daily, weekly and monthly reports are queued by schedules (pacsone/schedules.py), each when
its switch on the e-mail settings is on."""

import csv
import datetime
import io
import logging
from email.message import EmailMessage

from django.template.loader import render_to_string

from audit.journal import Action, Outcome, record
from routing.jobs import PermanentError, TransientError, start_job
from routing.models import Job

from . import humanize
from .stats import period_figures
from .stats_days import Period

log = logging.getLogger(__name__)

REPORT_TITLES = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
CHART_CID = "statistics-chart"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Each breakdown of the CSV: its heading, the figures' key, the columns after the label.
BREAKDOWNS = [
    ("modality", "by_modality", ("series", "instances")),
    ("source AE", "by_source_ae", ("studies", "instances", "bytes")),
    ("institution", "by_institution", ("studies", "instances", "bytes")),
    ("referring physician", "by_referring_physician", ("studies", "instances", "bytes")),
]


def _cell(value) -> str:
    """A spreadsheet never evaluates a name as a formula (as in the journal's CSV)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def figures_csv(figures: dict) -> str:
    """The figures as CSV, one block per table separated by an empty line; counts and bytes as
    plain numbers, days as YYYY-MM-DD."""
    out = io.StringIO()
    writer = csv.writer(out)
    period = figures["period"]
    writer.writerow(["statistics", period["from"], period["to"], f"by {period['by']}"])
    writer.writerow([])
    writer.writerow([period["by"], "studies", "series", "instances", "bytes"])
    for row in figures["timeline"]:
        writer.writerow([row["period"].isoformat(), row["studies"], row["series"], row["instances"], row["bytes"]])
    writer.writerow(["total", *(figures["totals"][key] for key in ("studies", "series", "instances", "bytes"))])
    for heading, key, columns in BREAKDOWNS:
        writer.writerow([])
        writer.writerow([heading, *columns])
        for row in figures[key]:
            writer.writerow([_cell(row["label"]), *(row[column] for column in columns)])
    writer.writerow([])
    writer.writerow(["hour", "instances"])
    for row in figures["busiest_hours"]:
        writer.writerow([f"{row['hour']:02d}:00", row["instances"]])
    writer.writerow([])
    writer.writerow(["storage location", "indexed bytes", "used bytes", "free bytes", "problem"])
    for row in figures["storage"]:
        writer.writerow([_cell(row["location"]), row["indexed_bytes"], row["used_bytes"], row["free_bytes"], row["problem"]])
    writer.writerow([])
    writer.writerow(["failure", "count"])
    for row in figures["failures"]["failed_jobs"]:
        writer.writerow([f"failed {row['kind']} jobs", row["count"]])
    for row in figures["failures"]["refused_stores"]:
        writer.writerow([_cell(f"refused instances from {row['label']}"), row["count"]])
    return out.getvalue()


def key_figures(figures: dict) -> list[tuple[str, str]]:
    totals = figures["totals"]
    return [
        ("Studies received", f"{totals['studies']:,}"),
        ("Series received", f"{totals['series']:,}"),
        ("Instances received", f"{totals['instances']:,}"),
        ("Data received", humanize.data_size(totals["bytes"])),
        ("Instances refused", f"{figures['refused_stores']:,}"),
        ("Failed jobs", f"{figures['failed_jobs']:,}"),
    ]


def period_words(figures: dict) -> str:
    period = figures["period"]
    first, last = (datetime.date.fromisoformat(period[key]) for key in ("from", "to"))
    return humanize.period(first, last)


def figures_text(figures: dict) -> str:
    """The figures for a terminal: key figures, the timeline and the breakdowns."""
    lines = [f"Statistics {period_words(figures)} (by {figures['period']['by']})", ""]
    lines += [f"{label:<20} {value}" for label, value in key_figures(figures)]
    lines += ["", f"{figures['period']['by']:<12} {'studies':>9} {'series':>9} {'instances':>10} {'data':>10}"]
    lines += [f"{humanize.date(row['period']):<12} {row['studies']:>9,} {row['series']:>9,} {row['instances']:>10,} "
              f"{humanize.data_size(row['bytes']):>10}" for row in figures["timeline"]]
    for heading, key, columns in BREAKDOWNS:
        if figures[key]:
            lines += ["", f"By {heading}:"]
            lines += [f"  {_shown_label(key, row['label'])}: " + ", ".join(
                f"{humanize.data_size(row[c]) if c == 'bytes' else f'{row[c]:,} {c}'}" for c in columns)
                for row in figures[key]]
    lines += ["", "Storage:"] + [f"  {row['location']}: {_storage_words(row)}" for row in figures["storage"]]
    return "\n".join(lines) + "\n"


def _shown_label(key: str, label: str) -> str:
    return humanize.person_name(label) if key == "by_referring_physician" and not label.startswith("(") else label


def _storage_words(row: dict) -> str:
    if row["problem"]:
        return f"{humanize.data_size(row['indexed_bytes'])} indexed; the disk cannot be read: {row['problem']}"
    return (f"{humanize.data_size(row['indexed_bytes'])} indexed, {humanize.data_size(row['used_bytes'])} used, "
            f"{humanize.data_size(row['free_bytes'])} free")


def chart_png(figures: dict, width: int = 720, height: int = 260) -> bytes:
    """Instances received per bucket as a bar chart, with the largest value and the first and
    last day written on it: the picture in the report e-mail."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    left, top, right, bottom = 60, 28, width - 16, height - 34
    rows = figures["timeline"]
    peak = max([row["instances"] for row in rows] + [1])
    draw.text((left, 6), f"Instances received per {figures['period']['by']}", fill="#222222", font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="#888888")
    draw.text((6, top - 6), f"{peak:,}", fill="#555555", font=font)
    draw.text((6, bottom - 8), "0", fill="#555555", font=font)
    slot = (right - left) / max(1, len(rows))
    for index, row in enumerate(rows):
        bar = (bottom - top) * row["instances"] / peak
        x0 = left + index * slot + max(1.0, slot * 0.15)
        x1 = left + (index + 1) * slot - max(1.0, slot * 0.15)
        if bar:
            draw.rectangle([x0, bottom - bar, max(x0, x1), bottom], fill="#1565c0")
    if rows:
        draw.text((left, bottom + 8), humanize.date(rows[0]["period"]), fill="#555555", font=font)
        last = humanize.date(rows[-1]["period"])
        draw.text((right - draw.textlength(last, font=font), bottom + 8), last, fill="#555555", font=font)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def breakdown_tables(figures: dict) -> list[dict]:
    """The breakdowns for a page or an e-mail: heading, column names, rows of shown cells."""
    def shown(row, column):
        return humanize.data_size(row[column]) if column == "bytes" else f"{row[column]:,}"

    return [{"heading": heading, "key": key, "columns": columns,
             "rows": [[_shown_label(key, row["label"]), *(shown(row, column) for column in columns)] for row in figures[key]]}
            for heading, key, columns in BREAKDOWNS]


def report_message(figures: dict, title: str) -> EmailMessage:
    """The report e-mail: text, and HTML with the chart inline (cid:), the CSV attached."""
    context = {"title": title, "period": period_words(figures), "figures": figures, "key_figures": key_figures(figures),
               "chart_cid": CHART_CID, "breakdowns": [table for table in breakdown_tables(figures) if table["rows"]]}
    message = EmailMessage()
    message["Subject"] = f"PacsOne {title.lower()}: {context['period']}"
    message.set_content(figures_text(figures))
    message.add_alternative(render_to_string("pacsone/statistics_email.html", context), subtype="html")
    message.get_payload()[1].add_related(chart_png(figures), maintype="image", subtype="png",
                                         cid=f"<{CHART_CID}>", filename="chart.png")
    period = figures["period"]
    message.add_attachment(figures_csv(figures).encode(), maintype="text", subtype="csv",
                           filename=f"statistics-{period['from']}-{period['to']}.csv")
    return message


def mail_report(period: Period, title: str, who: dict) -> str:
    """Compute the figures, mail them to the administrators and journal the outcome as `who`
    (`user=` or `username=`); the SMTP server's answer, or MailError."""
    from .mail import MailError, current, deliver

    server = current()
    detail = f"{title} {period.first} to {period.last} to={server.administrators}"
    try:
        answer = deliver(report_message(period_figures(period), title), server=server)
    except MailError as error:
        record(Action.EXPORT, **who, target="statistics report e-mail", outcome=Outcome.FAILURE,
               detail=f"{detail}: {error.reason}"[:1000])
        raise
    record(Action.EXPORT, **who, target="statistics report e-mail", detail=f"{detail}: {answer}"[:1000])
    return f"sent to {server.administrators}: {answer}"


def send_report(progress, first: str, last: str, by: str, title: str) -> str:
    """The job: mail the period's report; a server that is down or busy is tried again later."""
    from .mail import MailError

    progress.start(1)
    period = Period(datetime.date.fromisoformat(first), datetime.date.fromisoformat(last), by)
    # The one who asked for it from the page, or the schedule.
    who = {"user": progress.job.owner} if progress.job.owner_id else {"username": "(scheduler)"}
    try:
        result = mail_report(period, title, who)
    except MailError as error:
        raise (TransientError if error.transient else PermanentError)(error.reason) from error
    progress.advance()
    return result


def start_report_job(period: Period, title: str, owner=None) -> Job:
    words = humanize.period(period.first, period.last)
    return start_job(Job.Kind.REPORT, f"{title}: {words}", owner, "pacsone.stats_report.send_report",
                     period.first.isoformat(), period.last.isoformat(), period.by, title)


def queue_scheduled_report(kind: str) -> str:
    """A schedule's run: start the report's job when its switch is on and a server is set."""
    from .mail import NOT_CONFIGURED, current
    from .stats_periods import report_period

    server = current()
    if not getattr(server, f"{kind}_report"):
        return f"the {kind} report is switched off"
    if not server.host:
        log.warning("statistics report not queued kind=%s reason=%r", kind, NOT_CONFIGURED)
        return f"not queued: {NOT_CONFIGURED}"
    job = start_report_job(report_period(kind), f"{REPORT_TITLES[kind]} statistics report")
    return f"queued job {job.pk}"


def queue_daily_report() -> str:
    return queue_scheduled_report("daily")


def queue_weekly_report() -> str:
    return queue_scheduled_report("weekly")


def queue_monthly_report() -> str:
    return queue_scheduled_report("monthly")
