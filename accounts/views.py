"""Login-related pages and user administration (root only, seed 004)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from audit.journal import Action, record

from .forms import GroupForm, NewUserForm, PasswordResetForm, UserForm
from .models import ApiToken, User, UserGroup
from .privileges import root_required
from .tokens import TokenRefused, issue_token

USERS_PER_PAGE = 50


class PasswordChangeView(auth_views.PasswordChangeView):
    """The user's own password; also where an expired password sends them."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        record(Action.PASSWORD_CHANGE, request=self.request, target=self.request.user.username)
        messages.success(self.request, "Your password was changed.")
        return response


def _journal_admin(request, what: str, user_or_group) -> None:
    record(Action.USER_ADMIN, request=request, target=f"{what} {user_or_group}"[:255])


@root_required
def user_list(request):
    users = User.objects.order_by("username").prefetch_related("pacs_groups")
    query = request.GET.get("q", "").strip()
    if query:
        users = users.filter(
            Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
        )
    page = Paginator(users, USERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "accounts/user_list.html", {"page": page, "query": query})


@root_required
def user_create(request):
    form = NewUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        form.apply_password(user)
        user.save()
        form.save_m2m()
        user.pacs_groups.set(form.cleaned_data["pacs_groups"])
        _journal_admin(request, "created user", user.username)
        messages.success(request, gettext("User %(username)s created.") % {"username": user.username})
        return redirect("accounts:user-list")
    return render(request, "accounts/user_form.html", {"form": form, "creating": True})


@root_required
def user_edit(request, pk):
    user = get_object_or_404(User, pk=pk)
    form = UserForm(request.POST or None, instance=user)
    if user.is_root:  # root keeps every privilege and its name
        for name in ("username", "privileges", "is_active"):
            form.fields[name].disabled = True
    if request.method == "POST" and form.is_valid():
        form.save()
        _journal_admin(request, "changed user", user.username)
        messages.success(request, gettext("User %(username)s saved.") % {"username": user.username})
        return redirect("accounts:user-list")
    return render(request, "accounts/user_form.html", {"form": form, "subject": user})


@root_required
def user_password(request, pk):
    user = get_object_or_404(User, pk=pk)
    form = PasswordResetForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        form.apply_password(user)
        user.save()
        _journal_admin(request, "reset the password of", user.username)
        messages.success(request, gettext("Password of %(username)s reset.") % {"username": user.username})
        return redirect("accounts:user-list")
    return render(request, "accounts/user_password.html", {"form": form, "subject": user})


@root_required
@require_POST
def user_toggle_active(request, pk):
    user = get_object_or_404(User, pk=pk)
    if user.is_root:
        messages.error(request, gettext("root cannot be disabled."))
        return redirect("accounts:user-list")
    user.is_active = not user.is_active
    user.save(update_fields=["is_active"])
    _journal_admin(request, "enabled user" if user.is_active else "disabled user", user.username)
    return redirect("accounts:user-list")


def _confirm_delete(request, subject, kind: str, list_view: str):
    """GET: ask to confirm; POST: delete, journal, back to the list. root is never deleted."""
    if getattr(subject, "is_root", False):
        messages.error(request, gettext("root cannot be deleted."))
        return redirect(list_view)
    if request.method == "POST":
        name = str(subject)
        subject.delete()
        _journal_admin(request, f"deleted {kind}", name)
        messages.success(request, gettext("The %(kind)s %(name)s was deleted.") % {"kind": kind, "name": name})
        return redirect(list_view)
    return render(request, "accounts/confirm_delete.html", {"subject": subject, "kind": kind})


@root_required
def user_delete(request, pk):
    return _confirm_delete(request, get_object_or_404(User, pk=pk), "user", "accounts:user-list")


@root_required
def group_list(request):
    groups = UserGroup.objects.prefetch_related("members")
    return render(request, "accounts/group_list.html", {"groups": groups})


@root_required
def group_edit(request, pk=None):
    group = get_object_or_404(UserGroup, pk=pk) if pk else None
    form = GroupForm(request.POST or None, instance=group)
    if request.method == "POST" and form.is_valid():
        group = form.save()
        _journal_admin(request, "saved group", group.name)
        messages.success(request, gettext("Group %(name)s saved.") % {"name": group.name})
        return redirect("accounts:group-list")
    return render(request, "accounts/group_form.html", {"form": form, "subject": group})


@root_required
def group_delete(request, pk):
    return _confirm_delete(request, get_object_or_404(UserGroup, pk=pk), "group", "accounts:group-list")


@login_required
def token_list(request):
    """The user's own API tokens: list, make one (its key shown once, on this answer), revoke."""
    created_key = None
    if request.method == "POST":
        try:
            token, created_key = issue_token(request.user, request.POST.get("name", ""))
        except TokenRefused as refused:
            messages.error(request, str(refused))
        else:
            record(Action.USER_ADMIN, request=request, target=f"created API token {token.name}"[:255])
            messages.success(request, gettext("Token %(name)s created. Copy its key now: it is not shown again.") % {"name": token.name})
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": tokens, "created_key": created_key,
                                                   "token_days": settings.PACS_TOKEN_DAYS})


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.delete()
    record(Action.USER_ADMIN, request=request, target=f"revoked API token {token.name}"[:255])
    messages.success(request, gettext("Token %(name)s revoked.") % {"name": token.name})
    return redirect("accounts:token-list")
