"""The invocation lane on a real Redis: messages reach a consumer once, answers reach the
caller once, and what a dead worker took goes back on the queue."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import redis
from django.db import OperationalError

from invocations import concurrency, lane

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys of this test's own, so that a worker process of the suite takes none of it.
    prefix = f"stratus:test-lane:{uuid.uuid4().hex[:8]}:"
    monkeypatch.setattr(lane, "QUEUE_KEY", f"{prefix}invocations")
    monkeypatch.setattr(lane, "TAKEN_KEY_PREFIX", f"{prefix}taken:")
    monkeypatch.setattr(lane, "REPLY_KEY_PREFIX", f"{prefix}reply:")
    monkeypatch.setattr(lane, "DATABASE_RETRY_DELAYS", (0, 0))


class Recorder:
    """Stands in for invocation_execute: notes each call and answers as told."""

    def __init__(self, answer: object = None, failures: int = 0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answer = answer
        self.failures = failures
        self.release = threading.Event()
        self.release.set()

    def __call__(self, *, request_id: str, job: Any) -> object:
        self.calls.append((request_id, job))
        self.release.wait(10)
        if self.failures:
            self.failures -= 1
            raise OperationalError("the database is restarting")
        return self.answer if self.answer is not None else {"request_id": request_id}


def _consume(execute: Recorder, worker_id: str = "w1") -> lane.LaneConsumer:
    consumer = lane.LaneConsumer(worker_id=worker_id, threads=2, execute=execute)
    consumer.start()
    return consumer


def _length(key: str) -> int:
    return int(lane._client().llen(key))


def test_a_synchronous_invocation_is_run_once_and_answered_once():
    execute = Recorder()
    consumer = _consume(execute)
    try:
        lane.publish("r1", {"payload": "{}"}, caller_waits=True)
        answer = lane.wait_for_answer("r1", timeout=5)
    finally:
        consumer.join()

    assert answer == {"request_id": "r1"}
    assert execute.calls == [("r1", {"payload": "{}"})]
    assert lane.wait_for_answer("r1", timeout=0.1) is None
    assert _length(lane.taken_key("w1")) == 0
    assert _length(lane.QUEUE_KEY) == 0


def test_nobody_is_answered_for_an_event():
    execute = Recorder()
    consumer = _consume(execute)
    try:
        lane.publish("event", None, caller_waits=False)
        deadline = time.monotonic() + 5
        while _length(lane.taken_key("w1")) or not execute.calls:
            assert time.monotonic() < deadline, "the event was not run"
            time.sleep(0.01)
    finally:
        consumer.join()

    assert execute.calls == [("event", None)]
    assert not lane._client().exists(lane.reply_key("event"))


def test_a_delivery_that_found_the_record_taken_answers_nothing():
    # invocation_execute returns the record's status, not an answer, for a duplicate.
    consumer = _consume(Recorder(answer="running"))
    try:
        lane.publish("sync", None, caller_waits=True)
        assert lane.wait_for_answer("sync", timeout=1.5) is None
    finally:
        consumer.join()

    assert _length(lane.taken_key("w1")) == 0


def test_a_database_outage_is_waited_out():
    execute = Recorder(failures=2)
    consumer = _consume(execute)
    try:
        lane.publish("r2", None, caller_waits=True)
        answer = lane.wait_for_answer("r2", timeout=5)
    finally:
        consumer.join()

    assert answer == {"request_id": "r2"}
    assert len(execute.calls) == 3


def test_draining_finishes_what_was_taken_and_takes_nothing_more():
    execute = Recorder()
    execute.release.clear()
    consumer = _consume(execute)
    lane.publish("running", None, caller_waits=True)
    deadline = time.monotonic() + 5
    while not execute.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    consumer.stop_taking()
    time.sleep(lane.TAKE_BLOCK_SECONDS + 0.5)
    lane.publish("later", None, caller_waits=True)
    execute.release.set()
    consumer.join()

    assert [request_id for request_id, _ in execute.calls] == ["running"]
    assert lane.wait_for_answer("running", timeout=1) == {"request_id": "running"}
    assert _length(lane.QUEUE_KEY) == 1


def test_what_a_dead_worker_took_goes_back_on_the_queue():
    client = lane._client()
    client.lpush(lane.taken_key("dead"), "m1", "m2")
    client.lpush(lane.taken_key("alive"), "m3")

    moved = lane.requeue_taken_by_dead_workers({"alive"})

    assert moved == 2
    assert sorted(client.lrange(lane.QUEUE_KEY, 0, -1)) == [b"m1", b"m2"]
    assert client.lrange(lane.taken_key("alive"), 0, -1) == [b"m3"]
    assert not client.exists(lane.taken_key("dead"))


@pytest.fixture
def lane_without_redis(settings):
    from console.celery import app as celery_app
    from lib.processes import free_port

    # A loopback port nobody listens on: Redis is down.
    settings.STRATUS_LANE_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    # Restored by the suite's autouse fixture.
    celery_app.conf.task_always_eager = False
    lane._client.cache_clear()
    yield
    lane._client.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_synchronous_call_fails_cleanly_and_an_event_is_kept(
    user, lane_without_redis
):
    from invocations.models import Invocation
    from invocations.services import invocation_submit
    from invocations.tests.helpers import make_function

    function = make_function(user, "def lambda_handler(event, context):\n    return 1\n")

    with pytest.raises(redis.RedisError):
        invocation_submit(function=function, payload="{}")
    event = invocation_submit(function=function, payload="{}", invocation_type="Event")

    failed = Invocation.objects.get(invocation_type="RequestResponse")
    assert failed.status == "failed"
    assert failed.error_type == "ServiceException"
    assert "could not be queued" in failed.error_message
    # The synchronous call's concurrency was given back.
    assert concurrency.in_flight(function_id=function.pk, owner_id=user.pk)[0] == 0
    event.refresh_from_db()
    assert event.status == "queued"
