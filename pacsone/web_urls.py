"""Pages of the archive core: the start page, study browser, viewer and study actions."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
]
