"""Every django-q2 schedule of the server, one entry each: `ensure_schedules()` (run by
`setuppacs`, hence at every `make run`) creates those missing and corrects those changed."""

# name, the function it runs, and how often (minutes).
SCHEDULES = [
    {"name": "purge watermarks", "func": "routing.purge.check_watermarks", "minutes": 5},
]


def ensure_schedules() -> None:
    from django_q.models import Schedule

    for entry in SCHEDULES:
        Schedule.objects.update_or_create(
            name=entry["name"],
            defaults={"func": entry["func"], "schedule_type": Schedule.MINUTES, "minutes": entry["minutes"],
                      "repeats": -1},
        )
