from django.urls import include, path

from . import views

patterns = [
    path("", views.home, name="home"),
    path("messages/", views.message_list, name="messages"),
    path("messages/<int:pk>/", views.message_detail, name="message"),
    path("messages/<int:pk>/reprocess/", views.message_reprocess, name="message-reprocess"),
    path("destinations/", views.destination_list, name="destinations"),
    path("destinations/<int:pk>/remove/", views.destination_remove, name="destination-remove"),
    path("worklist/", views.worklist, name="worklist"),
    path("merges/", views.merge_list, name="merges"),
    path("merges/<int:pk>/undo/", views.merge_undo, name="merge-undo"),
]

urlpatterns = [path("", include((patterns, "hl7")))]
