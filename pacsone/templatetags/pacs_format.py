"""Template filters over pacsone.humanize, so every page formats alike:
`{% load pacs_format %}`, `{{ patient.patient_name|person }}` (a span with the raw value as its
title), `{{ study.received_at|when }}`, `{{ study.study_date|day }}`, `{{ seconds|duration }}`."""

from django import template
from django.utils.html import format_html

from .. import humanize

register = template.Library()


@register.filter
def person(raw) -> str:
    """The name as people write it, the DICOM value in its title (hover) for the exact spelling."""
    shown = humanize.person_name(raw)
    if not shown:
        return ""
    return format_html('<span class="pn" title="{}">{}</span>', raw, shown)


@register.filter
def person_text(raw) -> str:
    """The name as people write it, plain text (page titles, attributes)."""
    return humanize.person_name(raw)


@register.filter
def day(value) -> str:
    return humanize.date(value)


@register.filter
def when(value) -> str:
    return humanize.date_time(value)


@register.filter
def when_exact(value) -> str:
    """With seconds (the journal)."""
    return humanize.date_time(value, seconds=True)


@register.filter
def study_when(study) -> str:
    return humanize.study_when(study.study_date, study.study_time)


@register.filter
def age_sex(patient, on=None) -> str:
    """`42 y, female` (the age on the study's date when given)."""
    return humanize.age_and_sex(patient.birth_date, patient.sex, on)


@register.filter
def duration(seconds) -> str:
    return humanize.duration(seconds)


@register.filter
def sex(code) -> str:
    return humanize.sex(code)


@register.filter
def dicom_time(value) -> str:
    """A DICOM TM as `08:15`."""
    return humanize.dicom_time(value)


@register.simple_tag(takes_context=True)
def query_without_page(context) -> str:
    """The page's query string (repeated parameters too: modality chips) without `page`."""
    request = context.get("request")
    if request is None:
        return ""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@register.filter
def data_size(value) -> str:
    return humanize.data_size(value)
