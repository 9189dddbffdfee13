"""The routing table's pages (System Administration): list, add, change, remove, and "test this
rule" (which recent studies it would have matched: only those the administrator may see)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.utils.translation import gettext

from accounts.privileges import Privilege, privilege_required
from audit.journal import Action, record
from pacsone.access import studies_for
from pacsone.humanize import count

from .forms import RoutingRuleForm
from .matching import RuleError
from .models import RoutingRule
from .rules import do_remove_rule, do_save_rule, preview


@privilege_required(Privilege.SYSTEM_ADMIN)
def rule_list(request):
    rules = RoutingRule.objects.prefetch_related("destinations")
    return render(request, "routing/rule_list.html", {"rules": rules})


def _edit(request, rule: RoutingRule):
    form = RoutingRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        try:
            do_save_rule(saved, form.cleaned_data["destinations"], acting_user=request.user, request=request)
        except RuleError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, gettext("Routing rule %(name)s saved.") % {"name": saved.name})
            return redirect("routing-rules:rule-list")
    return render(request, "routing/rule_form.html", {"form": form, "rule": rule})


@privilege_required(Privilege.SYSTEM_ADMIN)
def rule_add(request):
    return _edit(request, RoutingRule())


@privilege_required(Privilege.SYSTEM_ADMIN)
def rule_edit(request, pk):
    return _edit(request, get_object_or_404(RoutingRule, pk=pk))


@require_POST
@privilege_required(Privilege.SYSTEM_ADMIN)
def rule_remove(request, pk):
    rule = get_object_or_404(RoutingRule, pk=pk)
    name = rule.name
    cancelled = do_remove_rule(rule, acting_user=request.user, request=request)
    messages.success(request, f"Routing rule {name} removed" + (f"; {count(cancelled, 'unfinished job', 'unfinished jobs')} cancelled." if cancelled else "."))
    return redirect("routing-rules:rule-list")


@privilege_required(Privilege.SYSTEM_ADMIN)
def rule_test(request, pk):
    rule = get_object_or_404(RoutingRule, pk=pk)
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), 90)
    except ValueError:
        days = 7
    try:
        rows, error = preview(rule, studies_for(request.user), days=days), ""
    except RuleError as problem:
        rows, error = [], str(problem)
    record(Action.SEARCH, request=request, target=f"routing rule test {rule.name}",
           detail=f"last {days} days: {count(len(rows), 'matching study', 'matching studies')}")
    return render(request, "routing/rule_test.html", {"rule": rule, "rows": rows, "days": days, "error": error})
