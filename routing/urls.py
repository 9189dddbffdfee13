from django.urls import include, path

from . import views

patterns = [
    path("", views.job_list, name="job-list"),
    path("bulk", views.job_bulk, name="job-bulk"),
    path("<int:pk>/", views.job_detail, name="job-detail"),
    path("<int:pk>/status.json", views.job_status, name="job-status"),
    path("<int:pk>/result", views.job_result, name="job-result"),
    path("<int:pk>/<str:action>", views.job_action, name="job-action"),
]

urlpatterns = [path("", include((patterns, "routing")))]
