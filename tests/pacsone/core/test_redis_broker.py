"""PACS_REDIS_URL: django-q2 uses the real Redis as its broker. The job table stays the truth
(routing/jobs.py); the broker only carries wake-ups, so what matters here is that a task queued
through Redis reaches a worker's dequeue intact. Skips without a Redis server unless
PACS_REQUIRE_PEERS=1 (CI), which turns the skip into a failure."""

import os
import uuid

import pytest
from django.test import override_settings

from tests.helpers import redis_available

REDIS_URL = os.environ.get("PACS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_or_skip() -> None:
    if not redis_available():
        reason = "no Redis server on 127.0.0.1:6379"
        if os.environ.get("PACS_REQUIRE_PEERS") == "1":
            pytest.fail(f"PACS_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)


def test_a_task_queued_through_redis_is_dequeued_intact(settings):
    redis_or_skip()
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    queue = f"pacsone-test-{uuid.uuid4().hex[:8]}"
    cluster = {**settings.Q_CLUSTER, "redis": REDIS_URL, "name": queue}
    cluster.pop("orm", None)
    with override_settings(Q_CLUSTER=cluster):
        previous = (Conf.REDIS, Conf.ORM, Conf.PREFIX)
        Conf.REDIS, Conf.ORM, Conf.PREFIX = REDIS_URL, None, queue
        try:
            broker = get_broker(list_key=queue)
            assert type(broker).__name__ == "Redis" and broker.ping()
            package = SignedPackage.dumps({"id": "t1", "func": "routing.runner.dispatch", "args": (), "kwargs": {}})
            broker.enqueue(package)
            assert broker.queue_size() == 1
            (task_id, received), = broker.dequeue()
            assert SignedPackage.loads(received)["func"] == "routing.runner.dispatch"
            assert broker.queue_size() == 0
            broker.delete_queue()
        finally:
            Conf.REDIS, Conf.ORM, Conf.PREFIX = previous
