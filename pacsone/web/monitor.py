"""The live monitor page (Monitor privilege): it polls `monitor/data.json` every few seconds."""

from django.http import JsonResponse
from django.shortcuts import render

from accounts.privileges import Privilege, privilege_required

from ..monitor import snapshot


@privilege_required(Privilege.MONITOR)
def monitor_page(request):
    return render(request, "pacsone/monitor.html", {"initial": snapshot()})


@privilege_required(Privilege.MONITOR)
def monitor_data(request):
    return JsonResponse(snapshot())
