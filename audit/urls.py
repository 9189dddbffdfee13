from django.urls import include, path

from . import views

patterns = [
    path("", views.journal, name="journal"),
    path("journal.csv", views.journal_csv, name="journal-csv"),
    path("mail/", views.mail_settings, name="mail-settings"),
    path("mail/test/", views.mail_test, name="mail-test"),
]

urlpatterns = [path("", include((patterns, "audit")))]
