"""URLs of the remote AE registry (aes/) and the remote search (remote/), included from
pacsone/urls.py under the namespace "dicom"."""

from django.urls import include, path

from . import views

patterns = [
    path("aes/", views.ae_list, name="ae-list"),
    path("aes/add/", views.ae_edit, name="ae-add"),
    path("aes/<int:pk>/", views.ae_edit, name="ae-edit"),
    path("aes/<int:pk>/delete/", views.ae_delete, name="ae-delete"),
    path("aes/<int:pk>/echo/", views.ae_echo, name="ae-echo"),
    path("aes/<int:pk>/sync/", views.ae_sync, name="ae-sync"),
    path("aes/<int:pk>/sync/now/", views.ae_sync_now, name="ae-sync-now"),
    path("remote/", views.remote_search, name="remote-search"),
    path("remote/retrieve/", views.remote_retrieve, name="remote-retrieve"),
]

urlpatterns = [path("", include((patterns, "dicom")))]
