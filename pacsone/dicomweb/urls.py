"""DICOMweb's URL map (PS3.18 resources) under /dicomweb/, WADO-URI at /wado, OHIF at /viewer/."""

from django.urls import path, re_path

from . import viewer, views

S = "dicomweb/studies/<str:study_uid>"
SE = S + "/series/<str:series_uid>"
I = SE + "/instances/<str:sop_uid>"

urlpatterns = [
    path("dicomweb/studies", views.studies),
    path("dicomweb/series", views.all_series),
    path("dicomweb/instances", views.all_instances),
    path(S, views.study),
    path(S + "/metadata", views.metadata),
    path(S + "/thumbnail", views.thumbnail),
    path(S + "/series", views.study_series),
    path(S + "/instances", views.study_instances),
    path(SE, views.series),
    path(SE + "/metadata", views.metadata),
    path(SE + "/thumbnail", views.thumbnail),
    path(SE + "/instances", views.series_instances),
    path(I, views.instance),
    path(I + "/metadata", views.metadata),
    path(I + "/rendered", views.rendered),
    path(I + "/thumbnail", views.thumbnail),
    path(I + "/bulkdata/<path:tag_path>", views.bulkdata),
    path(I + "/frames/<str:frame_list>", views.frames),
    path(I + "/frames/<str:frame_list>/rendered", views.rendered),
    path("wado", views.wado_object),
    path("viewer/app-config.js", viewer.app_config),
    re_path(r"^viewer/(?P<name>.*)$", viewer.viewer),
]
