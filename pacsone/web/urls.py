"""The one URL map of the archive's pages. The accounts, journal and job pages are their apps'
own (accounts/, audit/, routing/); the REST API is pacsone/api/urls.py."""

from django.urls import include, path

from . import (actions, aes, bulk, edit, export, forward, health, images, monitor, notes, printing, statistics,
               storage, studies, transfer, trash)

STUDY = "studies/<str:study_uid>/"
INSTANCE = STUDY + "instances/<str:sop_uid>/"
SERIES = STUDY + "series/<str:series_uid>/"

# The remote AE registry and the remote search, under the namespace "dicom".
remote_ae_patterns = [
    path("aes/", aes.ae_list, name="ae-list"),
    path("aes/add/", aes.ae_edit, name="ae-add"),
    path("aes/<int:pk>/", aes.ae_edit, name="ae-edit"),
    path("aes/<int:pk>/delete/", aes.ae_delete, name="ae-delete"),
    path("aes/<int:pk>/echo/", aes.ae_echo, name="ae-echo"),
    path("aes/<int:pk>/sync/", aes.ae_sync, name="ae-sync"),
    path("aes/<int:pk>/sync/now/", aes.ae_sync_now, name="ae-sync-now"),
    path("remote/", aes.remote_search, name="remote-search"),
    path("remote/retrieve/", aes.remote_retrieve, name="remote-retrieve"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    # the study browser and the viewer
    path("", studies.home, name="home"),
    path("patients/<int:pk>/", studies.patient_page, name="patient"),
    path(STUDY, studies.study_page, name="study"),
    path(SERIES, studies.series_page, name="series"),
    path(SERIES + "viewer", images.viewer, name="viewer"),
    path(SERIES + "viewer.json", images.viewer_json, name="viewer-data"),
    path(SERIES + "pixels", images.series_pixels, name="series-pixels"),
    path(INSTANCE + "thumbnail", images.thumbnail, name="instance-thumbnail"),
    path(INSTANCE + "frame", images.frame, name="instance-frame"),
    path(INSTANCE + "pixels", images.pixels, name="instance-pixels"),
    path(INSTANCE + "header", images.header_dump, name="instance-header"),
    # actions on studies and patients
    path(STUDY + "forward", forward.forward_study, name="study-forward"),
    path("actions/study/<str:study_uid>/mark/", actions.mark_study, name="study-mark"),
    path("actions/study/<str:study_uid>/public/", actions.study_visibility, name="study-public"),
    path("actions/study/<str:study_uid>/delete/", actions.delete, name="study-delete"),
    path("actions/study/<str:study_uid>/edit/", edit.edit_study, name="study-edit"),
    path("actions/studies/", bulk.bulk_action, name="studies-bulk"),
    path("actions/patient/<int:patient_pk>/public/", actions.patient_visibility, name="patient-public"),
    path("export/", export.export_studies, name="export-studies"),
    path("download/<str:study_uid>.zip", transfer.download_study, name="download-study"),
    path("upload/", transfer.upload, name="upload"),
    path("upload/<int:job_pk>/", transfer.upload_status, name="upload-status"),
    path("import/", transfer.import_from_server, name="import"),
    path("notes/<str:study_uid>/", notes.study_notes, name="study-notes"),
    path("notes/attachment/<int:pk>/", notes.attachment_download, name="attachment-download"),
    path("actions/study/<str:study_uid>/legal-hold/", storage.legal_hold, name="study-legal-hold"),
    path("actions/change-storage/", storage.change_storage, name="change-storage"),
    path("storage/", storage.storage_list, name="storage-list"),
    path("storage/<int:pk>/", storage.storage_edit, name="storage-edit"),
    path("storage/<int:pk>/current/", storage.storage_set_current, name="storage-current"),
    path("storage/<int:pk>/purge/", storage.storage_purge, name="storage-purge"),
    path("storage/retention/", storage.retention_rule, name="retention-rule"),
    path("notes/attachment/<int:pk>/image", notes.attachment_inline, name="attachment-inline"),
    path("trash/", trash.trash_list, name="trash"),
    path("trash/<int:pk>/restore/", trash.restore, name="trash-restore"),
    path("trash/empty/", trash.empty, name="trash-empty"),
    path("printers/", printing.printer_list, name="printer-list"),
    path("printers/add/", printing.printer_edit, name="printer-add"),
    path("printers/<int:pk>/", printing.printer_edit, name="printer-edit"),
    path("printers/<int:pk>/delete/", printing.printer_delete, name="printer-delete"),
    path("printers/<int:pk>/verify/", printing.printer_verify, name="printer-verify"),
    path("print/", printing.print_page, name="print"),
    path("print/select/", printing.print_select, name="print-select"),
    path("print/sheet/<int:sheet>.png", printing.print_preview, name="print-preview"),
    path("monitor/", monitor.monitor_page, name="monitor"),
    path("monitor/data.json", monitor.monitor_data, name="monitor-data"),
    path("statistics/", statistics.statistics_page, name="statistics"),
    path("statistics/statistics.csv", statistics.statistics_csv, name="statistics-csv"),
    path("statistics/report/", statistics.statistics_report, name="statistics-report"),
    path("", include((remote_ae_patterns, "dicom"))),
]
