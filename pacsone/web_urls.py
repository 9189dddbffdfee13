"""Pages of the archive core: the study browser and the viewer (the study actions are in
pacsone/urls.py: study_actions, edit_views, transfer_views, export_views, notes_views)."""

from django.urls import path

from . import views, views_forward, views_images

STUDY = "studies/<str:study_uid>/"
INSTANCE = STUDY + "instances/<str:sop_uid>/"
SERIES = STUDY + "series/<str:series_uid>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("patients/<int:pk>/", views.patient_page, name="patient"),
    path(STUDY, views.study_page, name="study"),
    path(STUDY + "forward", views_forward.forward_study, name="study-forward"),
    path(SERIES, views.series_page, name="series"),
    path(SERIES + "viewer", views_images.viewer, name="viewer"),
    path(INSTANCE + "thumbnail", views_images.thumbnail, name="instance-thumbnail"),
    path(INSTANCE + "frame", views_images.frame, name="instance-frame"),
    path(INSTANCE + "header", views_images.header_dump, name="instance-header"),
]
