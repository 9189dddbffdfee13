"""Per-instance delivery records: what each destination confirmed (DESIGN.md: nothing sent twice
to a destination that confirmed it; auto-purge only once every destination confirmed all)."""

from django.db import IntegrityError, transaction

from .models import Delivery, Job


def confirm(instance, destination, job: Job | None, code: int,
            confirmation: str = Delivery.Confirmation.STORE) -> None:
    """Record (at once, in its own transaction: a crash a moment later must not lose it) that
    `destination` confirmed `instance`."""
    try:
        with transaction.atomic():
            Delivery.objects.create(instance=instance, destination=destination, job=job, status=code,
                                    confirmation=confirmation)
    except IntegrityError:  # confirmed before (a person's forward sends again): the latest counts
        Delivery.objects.filter(instance=instance, destination=destination).update(job=job, status=code)


def delivered_by_job(job: Job, destination) -> set[int]:
    return set(Delivery.objects.filter(job=job, destination=destination).values_list("instance_id", flat=True))


def undelivered(instances, destination):
    """`instances` (a queryset) less those `destination` confirmed."""
    return instances.exclude(deliveries__destination=destination)


def all_confirmed(instances, destinations) -> bool:
    """Did every destination confirm every one of `instances`?"""
    return all(not undelivered(instances, destination).exists() for destination in destinations)
