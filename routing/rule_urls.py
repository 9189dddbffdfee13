from django.urls import include, path

from . import rule_views

patterns = [
    path("", rule_views.rule_list, name="rule-list"),
    path("add/", rule_views.rule_add, name="rule-add"),
    path("<int:pk>/", rule_views.rule_edit, name="rule-edit"),
    path("<int:pk>/remove", rule_views.rule_remove, name="rule-remove"),
    path("<int:pk>/test", rule_views.rule_test, name="rule-test"),
]

urlpatterns = [path("", include((patterns, "routing-rules")))]
