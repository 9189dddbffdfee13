"""The URL map: each app brings its own urls module."""

from django.urls import include, path

from . import edit_views, export_views, health, monitor_views, notes_views, study_actions, transfer_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("journal/", include("audit.urls")),
    path("jobs/", include("routing.urls")),
    path("api/", include("pacsone.api_urls")),
    path("monitor/", monitor_views.monitor_page, name="monitor"),
    path("monitor/data.json", monitor_views.monitor_data, name="monitor-data"),
    path("actions/study/<str:study_uid>/mark/", study_actions.mark_study, name="study-mark"),
    path("actions/study/<str:study_uid>/public/", study_actions.study_visibility, name="study-public"),
    path("actions/study/<str:study_uid>/delete/", study_actions.delete, name="study-delete"),
    path("actions/study/<str:study_uid>/edit/", edit_views.edit_study, name="study-edit"),
    path("actions/patient/<int:patient_pk>/public/", study_actions.patient_visibility, name="patient-public"),
    path("export/", export_views.export_studies, name="export-studies"),
    path("download/<str:study_uid>.zip", transfer_views.download_study, name="download-study"),
    path("upload/", transfer_views.upload, name="upload"),
    path("import/", transfer_views.import_from_server, name="import"),
    path("notes/<str:study_uid>/", notes_views.study_notes, name="study-notes"),
    path("notes/attachment/<int:pk>/", notes_views.attachment_download, name="attachment-download"),
    path("", include("pacsone.dicom.urls")),
    path("", include("pacsone.web_urls")),
]
