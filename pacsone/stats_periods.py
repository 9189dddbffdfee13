"""Which period a statistics request or report covers: the page's presets (today, 7 days,
30 days, a year, a chosen range), the reports' periods (yesterday, last week, last month, each
computed from one "now" so that a frozen clock gives the same answer), and the form that
checks a requested period for the page, the CSV export and /api/statistics/."""

import datetime

from django import forms

from routing import clock

from .stats_days import BY_CHOICES, Period, period_problems

PRESETS = {
    "today": ("Today", 0, "day"),
    "7days": ("Last 7 days", 6, "day"),
    "30days": ("Last 30 days", 29, "day"),
    "year": ("Last 12 months", 364, "month"),
}
REPORTS = ("daily", "weekly", "monthly")
DATE_FORMATS = ["%Y-%m-%d", "%Y%m%d"]


def today() -> datetime.date:
    from django.utils import timezone

    return timezone.localtime(clock.now()).date()


def preset_period(name: str, on: datetime.date | None = None, by: str | None = None) -> Period:
    _, days_back, default_by = PRESETS[name]
    last = on or today()
    return Period(last - datetime.timedelta(days=days_back), last, by or default_by)


def report_period(kind: str, on: datetime.date | None = None) -> Period:
    """The period a scheduled report covers when sent on `on` (default: today): `daily` is
    yesterday, `weekly` the last whole week (Monday to Sunday), `monthly` the last whole month."""
    on = on or today()
    if kind == "daily":
        yesterday = on - datetime.timedelta(days=1)
        return Period(yesterday, yesterday, "day")
    if kind == "weekly":
        monday = on - datetime.timedelta(days=on.weekday() + 7)
        return Period(monday, monday + datetime.timedelta(days=6), "day")
    if kind == "monthly":
        last = on.replace(day=1) - datetime.timedelta(days=1)
        return Period(last.replace(day=1), last, "day")
    raise ValueError(f"unknown report {kind!r}: one of {', '.join(REPORTS)}")


class PeriodForm(forms.Form):
    """`preset` or a `from`/`to` range (both days included) and the unit `by`. Empty: the last 30 days by day."""

    preset = forms.ChoiceField(choices=[("", "Chosen range")] + [(key, value[0]) for key, value in PRESETS.items()],
                               required=False, label="Period")
    date_from = forms.DateField(required=False, label="From", input_formats=DATE_FORMATS,
                                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(required=False, label="To", input_formats=DATE_FORMATS,
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    by = forms.ChoiceField(choices=[(by, by.capitalize()) for by in BY_CHOICES], required=False, label="By")

    @classmethod
    def from_query(cls, params) -> "PeriodForm":
        """The form bound to a query string, where the API's `from`/`to` are the page's `date_from`/`date_to`."""
        data = params.copy()
        for short, field in (("from", "date_from"), ("to", "date_to")):
            if short in data and field not in data:
                data[field] = data[short]
        if not any(data.get(key) for key in ("preset", "date_from", "date_to", "by")):
            data["preset"] = "30days"
        return cls(data)

    def clean(self):
        cleaned = super().clean()
        preset, first, last = cleaned.get("preset"), cleaned.get("date_from"), cleaned.get("date_to")
        if not preset:
            if not first and "date_from" not in self.errors:
                self.add_error("date_from", "Give the first day of the range (YYYY-MM-DD).")
            if not last and "date_to" not in self.errors:
                self.add_error("date_to", "Give the last day of the range (YYYY-MM-DD).")
        if self.errors:
            return cleaned
        by = cleaned.get("by") or (PRESETS[preset][2] if preset else "day")
        period = preset_period(preset, by=by) if preset else Period(first, last, by)
        for field, problem in period_problems(period.first, period.last, period.by).items():
            self.add_error({"to": "date_to"}.get(field, field), problem)
        cleaned["period"] = period
        return cleaned

    @property
    def period(self) -> Period:
        return self.cleaned_data["period"]

    def problems(self) -> dict[str, str]:
        """The errors by the API's names (`from`, `to`, `by`)."""
        names = {"date_from": "from", "date_to": "to"}
        return {names.get(field, field): " ".join(errors) for field, errors in self.errors.items()}
