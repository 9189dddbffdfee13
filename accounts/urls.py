from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

# User and group administration, namespaced "accounts:" (root only).
administration = [
    path("users/", views.user_list, name="user-list"),
    path("users/new/", views.user_create, name="user-create"),
    path("users/<int:pk>/", views.user_edit, name="user-edit"),
    path("users/<int:pk>/password/", views.user_password, name="user-password"),
    path("users/<int:pk>/active/", views.user_toggle_active, name="user-toggle-active"),
    path("users/<int:pk>/delete/", views.user_delete, name="user-delete"),
    path("groups/", views.group_list, name="group-list"),
    path("groups/new/", views.group_edit, name="group-create"),
    path("groups/<int:pk>/", views.group_edit, name="group-edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group-delete"),
    # Every user's own API tokens.
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("", include((administration, "accounts"))),
]
