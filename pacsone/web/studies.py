"""Browse pages: the study list (start page) with search, a patient, a study, a series.

Every page reaches studies through pacsone.access (invariant 2): a study, series, instance or
patient the user may not see is a 404, journaled. Each page view is journaled.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.shortcuts import render

from accounts.privileges import Privilege, has_privilege
from audit.journal import Action, Outcome, record

from ..access import access_patient, access_series, access_study, series_of, studies_for, with_first_images
from ..models import Patient, RemoteAE, Study
from ..query_limits import QueryTimeout, time_limited
from ..stats import cached_archive_stats
from ..study_search import search_studies

STUDIES_PER_PAGE = 50
INSTANCES_PER_PAGE = 120
# Sort keys of the study list -> columns, each ending in a tie-breaker that its index already
# holds (an index carries the row id), so a page is read from the index in order instead of
# sorting every study: the study's pk, or for patient columns the patient's (one patient's
# studies then follow each other in the order of the study table's patient index).
SORTS = {
    "date": ("study_date", "study_time", "pk"),
    "name": ("patient__patient_name_search", "patient row"),
    "patient_id": ("patient__patient_id", "patient row"),
    "accession": ("accession_number", "pk"),
    "referring": ("referring_physician_name", "pk"),
    "received": ("received_at", "pk"),
    "modality": ("modalities_in_study", "pk"),
    "description": ("study_description", "pk"),
    "images": ("number_of_instances", "pk"),
}
DEFAULT_SORT = "-date"
COLUMNS = [  # (label, sort key or "", CSS class: "wide" columns fold away on a phone)
    ("Patient", "name", ""), ("Patient ID", "patient_id", "pid"), ("Study date", "date", "nowrap"),
    ("Modality", "modality", ""), ("Description", "description", ""), ("Accession", "accession", "wide"),
    ("Referring physician", "referring", "wide"), ("Images", "images", "wide"), ("Received", "received", "wide"),
]
FILTERS = ("q", "period", "patient_name", "patient_id", "accession_number", "date_from", "date_to", "modality",
           "referring_physician", "source_ae", "read", "public")
# The modality chips: the usual ones, several may be chosen at once.
MODALITY_CHIPS = ("CT", "MR", "CR", "DX", "US", "MG", "NM", "PT", "XA", "RF", "SR", "OT")
PERIOD_CHIPS = (("today", "Today"), ("yesterday", "Yesterday"), ("7d", "7 days"), ("30d", "30 days"))
# The detailed fields, shown folded unless one of them is in use.
DETAILED_FILTERS = ("patient_name", "patient_id", "accession_number", "date_from", "date_to",
                    "referring_physician", "source_ae", "read", "public")


def permissions(user) -> dict[str, bool]:
    """What the user may do, for templates (the one privilege check)."""
    return {privilege.value: has_privilege(user, privilege) for privilege in Privilege}


def subject(study: Study) -> dict[str, str]:
    """The journal's patient and study fields for a study."""
    return {"patient_id": study.patient.patient_id, "study_uid": study.study_instance_uid}


def paged_studies(studies, number):
    """One page of studies. The ordered scan reads only ids (the sort's index covers it), then
    the page's 50 rows are fetched by primary key: far cheaper than sorting whole rows."""
    page = Paginator(studies.values_list("pk", flat=True), STUDIES_PER_PAGE).get_page(number)
    ids = list(page.object_list)
    rows = studies.select_related("patient").order_by().in_bulk(ids)
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    return page


def _patient_row() -> RawSQL:
    """The patient table's own id. Django would order `patient__pk` by the study's copy of it,
    which no patient index holds, and sort every study."""
    quote = connection.ops.quote_name
    return RawSQL(f"{quote(Patient._meta.db_table)}.{quote(Patient._meta.pk.column)}", ())


def _chip_links(request, name: str, choices, *, several: bool) -> list[dict]:
    """Quick filters as links that keep the rest of the search: a click on a chip chooses it
    (or, for several at once, adds or removes it)."""
    chosen = [value.upper() if several else value for value in request.GET.getlist(name)]
    chips = []
    for value, label in choices:
        params = request.GET.copy()
        params.pop("page", None)
        on = value in chosen
        if several:
            params.setlist(name, [v for v in chosen if v != value] if on else [*chosen, value])
        else:
            params.setlist(name, [] if on else [value])
        chips.append({"label": label, "on": on, "url": "?" + params.urlencode()})
    return chips


def _sort_links(request, current: str) -> list[dict]:
    """Header cells of the study list: a click sorts by the column, a second click reverses."""
    cells = []
    for label, key, css in COLUMNS:
        cell = {"label": label, "url": "", "arrow": "", "css": css}
        if key:
            params = request.GET.copy()
            params.pop("page", None)
            params["sort"] = f"-{key}" if current == key else key
            cell["url"] = "?" + params.urlencode()
            cell["arrow"] = "▲" if current == key else "▼" if current == f"-{key}" else ""
        cells.append(cell)
    return cells


def _sees_whole_archive(user) -> bool:
    return has_privilege(user, Privilege.VIEW) or has_privilege(user, Privilege.MONITOR)


@login_required
def home(request):
    """The study list: search, sort, pages; what the archive holds in a summary bar. The
    search runs under the query time bound: past it, the page says so and lists nothing."""
    try:
        with time_limited():
            studies, problems = search_studies(studies_for(request.user), request.GET)
    except QueryTimeout as timeout:
        studies, problems = studies_for(request.user).none(), {"search": str(timeout)}
    sort = request.GET.get("sort") or DEFAULT_SORT
    if sort.lstrip("-") not in SORTS:
        problems["sort"] = f"cannot sort by {sort!r}"
        sort = DEFAULT_SORT
    descending = sort.startswith("-")
    columns = [_patient_row() if name == "patient row" else F(name) for name in SORTS[sort.lstrip("-")]]
    order = [column.desc() if descending else column.asc() for column in columns]
    if problems:
        # Invalid input is shown next to its field, and no result is claimed for it.
        studies = studies.none()
    try:
        with time_limited():
            page = paged_studies(studies.order_by(*order), request.GET.get("page"))
    except QueryTimeout as timeout:
        problems["search"] = str(timeout)
        page = paged_studies(studies.none(), None)
    with_first_images(page.object_list)
    criteria = {name: ",".join(request.GET.getlist(name)) for name in FILTERS if request.GET.get(name, "").strip()}
    record(Action.SEARCH, request=request, target="study list",
           outcome=Outcome.FAILURE if problems else Outcome.SUCCESS,
           detail=", ".join(f"{k}={v}" for k, v in criteria.items()) or "all studies")
    return render(request, "pacsone/study_list.html", {
        "page": page, "problems": problems, "params": request.GET, "columns": _sort_links(request, sort),
        "searched": bool(criteria), "may": permissions(request.user),
        "modality_chips": _chip_links(request, "modality", [(m, m) for m in MODALITY_CHIPS], several=True),
        "period_chips": _chip_links(request, "period", PERIOD_CHIPS, several=False),
        "detailed_open": any(request.GET.get(name, "").strip() for name in DETAILED_FILTERS)
        or any(name in problems for name in DETAILED_FILTERS),
        "sees_all": has_privilege(request.user, Privilege.VIEW),
        "remote_aes": RemoteAE.objects.order_by("ae_title") if has_privilege(request.user, Privilege.FORWARD) else [],
        "bulk_actions": any(has_privilege(request.user, p) for p in
                            (Privilege.DOWNLOAD, Privilege.EXPORT, Privilege.FORWARD, Privilege.MARK_STUDY,
                             Privilege.MODIFY, Privilege.CHANGE_STORAGE, Privilege.PRINT)),
        # Whole-archive figures only for those who see every study or watch the server: for
        # others they would count patients they may not see.
        "stats": cached_archive_stats() if _sees_whole_archive(request.user) else None,
        "dicom_instances": settings.PACS_DICOM_INSTANCES,
    })


@login_required
def patient_page(request, pk: int):
    patient = access_patient(request, pk)
    studies = studies_for(request.user).filter(patient=patient).order_by("-study_date", "-study_time", "-pk")
    record(Action.VIEW, request=request, patient_id=patient.patient_id, target="patient")
    return render(request, "pacsone/patient.html", {
        "patient": patient, "studies": studies, "may": permissions(request.user),
    })


@login_required
def study_page(request, study_uid: str):
    study = access_study(request, study_uid)
    from .images import main_series

    series = list(series_of(study).select_related("equipment").order_by("series_number", "pk"))
    record(Action.VIEW, request=request, target="study", **subject(study))
    return render(request, "pacsone/study.html", {
        "study": study, "patient": study.patient, "series_list": series, "may": permissions(request.user),
        "main_series": main_series(series),
        "notes_count": study.notes.count(),
        "remote_aes": RemoteAE.objects.order_by("ae_title") if has_privilege(request.user, Privilege.FORWARD) else [],
    })


@login_required
def series_page(request, study_uid: str, series_uid: str):
    series = access_series(request, study_uid, series_uid)
    instances = series.instances.order_by("instance_number", "pk").only(
        "sop_instance_uid", "instance_number", "transfer_syntax_uid", "series_id")
    page = Paginator(instances, INSTANCES_PER_PAGE).get_page(request.GET.get("page"))
    record(Action.VIEW, request=request, target=f"series {series.series_number or ''}".strip(),
           **subject(series.study))
    return render(request, "pacsone/series.html", {
        "series": series, "study": series.study, "patient": series.study.patient, "page": page,
        "may": permissions(request.user),
    })
