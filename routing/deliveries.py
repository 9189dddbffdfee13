"""Per-instance delivery records: what each destination confirmed (DESIGN.md: nothing sent twice
to a destination that confirmed it; auto-purge only once every destination confirmed all)."""

import functools
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

from .models import Delivery, Job


def confirm(instance, destination, job: Job | None, code: int,
            confirmation: str = Delivery.Confirmation.STORE, awaiting_commitment: bool = False) -> None:
    """Record, in one statement committed at once (a crash a moment later must not lose it),
    that `destination` confirmed `instance`; confirmed again (a person's forward sends again),
    the latest answer counts. `awaiting_commitment`: the destination is to commit it too
    (routing/commitment.py); until then auto-purge does not count it. Plain SQL: this runs
    once per instance sent, and the ORM's upsert cost more than the statement itself."""
    commitment = Delivery.Commitment.PENDING if awaiting_commitment else Delivery.Commitment.NONE
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(connection.vendor),
                       [instance.pk, destination.pk, job.pk if job else None, code, confirmation, timezone.now(),
                        commitment, "", ""])


@functools.cache
def _upsert_sql(vendor: str) -> str:
    table = connection.ops.quote_name(Delivery._meta.db_table)
    columns = ("instance_id, destination_id, job_id, status, confirmation, delivered_at, commitment, commitment_uid, "
               "commitment_reason")
    insert = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    changed = ("job_id", "status", "confirmation", "delivered_at", "commitment", "commitment_uid", "commitment_reason")
    if vendor == "mysql":
        return insert + "ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in changed)
    return insert + "ON CONFLICT (instance_id, destination_id) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in changed)


def delivered_by_job(job: Job, destination) -> set[int]:
    return set(Delivery.objects.filter(job=job, destination=destination).values_list("instance_id", flat=True))


def undelivered(instances, destination):
    """`instances` (a queryset) less those `destination` confirmed (one whose storage commitment
    failed counts as not delivered: a retry sends it again)."""
    kept = Delivery.objects.filter(destination=destination).exclude(commitment=Delivery.Commitment.FAILED)
    return instances.exclude(pk__in=kept.values("instance_id"))


def all_confirmed(instances, destinations) -> bool:
    """Did every destination confirm every one of `instances`: C-STORE Success, and its storage
    commitment where it was asked (pending, failed or not received does not count)?"""
    for destination in destinations:
        settled = Delivery.objects.filter(destination=destination, commitment__in=Delivery.SETTLED)
        if instances.exclude(pk__in=settled.values("instance_id")).exists():
            return False
    return True


@contextmanager
def commits_safe_from_a_crash_not_a_power_cut():
    """While a job sends: each instance's record is committed as it is confirmed, durable against
    the job's process being killed (what must never cause a re-send) but not flushed to the disk
    each time (PRAGMA synchronous=NORMAL on SQLite in WAL mode; synchronous_commit off on
    PostgreSQL). A power cut may forget the last few records, and those instances would go
    again. With synchronous=FULL every record cost an fsync (~4 ms here): routing ran at 65
    instances/s where a C-MOVE of the same study ran at 500. Only this connection, only while
    the send lasts; MariaDB's setting is server-wide and is left alone."""
    statements = {"sqlite": ("PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"),
                  "postgresql": ("SET synchronous_commit TO OFF", "SET synchronous_commit TO DEFAULT")}
    relax, restore = statements.get(connection.vendor, (None, None))
    if connection.in_atomic_block:  # run inside a caller's transaction (tests): nothing commits here anyway
        relax = restore = None
    if relax:
        with connection.cursor() as cursor:
            cursor.execute(relax)
    try:
        yield
    finally:
        if restore:
            with connection.cursor() as cursor:
                cursor.execute(restore)
