"""The invocation lane: how an accepted invocation reaches a worker, and how a synchronous
caller gets its answer, on plain Redis lists.

A Celery message per invocation (publish, late acknowledgement, result store) cost more CPU
than the invocation itself, so every invocation to run now goes through the lane, and
Celery keeps what needs its scheduling: delayed retries and the periodic sweeps.

- The web process pushes `{"id", "job", "reply"}` on the queue list once the record is
  committed (queued); the record stays the source of truth.
- A worker thread moves the message to its worker's *taken* list (one atomic BLMOVE), runs
  the invocation, then in one round trip pushes the answer on the request's reply list
  (when a caller waits) and drops the message from its taken list.
- A synchronous caller blocks on its reply list (BLPOP).
- A worker that dies leaves its messages on its taken list: the orphan sweep moves them back
  to the queue (`requeue_taken_by_dead_workers`); the claim in the record makes a second
  delivery harmless. A message lost with Redis itself leaves a queued record, which the
  sweeper republishes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

QUEUE_KEY = "stratus:lane:invocations"
TAKEN_KEY_PREFIX = "stratus:lane:taken:"
REPLY_KEY_PREFIX = "stratus:lane:reply:"
# An answer nobody picked up (its caller gave up) is dropped after this long.
REPLY_TTL_SECONDS = 120
# How long a worker thread blocks for a message before it looks whether to stop.
TAKE_BLOCK_SECONDS = 1
# While the database restarts the claim cannot be written: the invocation is tried again
# after these pauses (the record stays queued, and a synchronous caller keeps waiting).
DATABASE_RETRY_DELAYS = (1, 2, 4, 8, 8, 8, 8, 8)
# Pauses between attempts to reach a Redis that does not answer.
REDIS_RETRY_DELAYS = (0.5, 1, 2, 4)

Executor = Callable[..., object]


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    # The socket timeout bounds a call to a Redis that stopped answering; it is longer than
    # any blocking call here.
    return redis.Redis.from_url(
        settings.STRATUS_LANE_REDIS_URL,
        socket_timeout=TAKE_BLOCK_SECONDS + 10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def enabled() -> bool:
    """Whether invocations go through the lane: a Redis broker and real workers (without
    them, Celery runs tasks in-process)."""
    from console.celery import app as celery_app

    return bool(settings.STRATUS_LANE_REDIS_URL) and not celery_app.conf.task_always_eager


def reply_key(request_id: str) -> str:
    return f"{REPLY_KEY_PREFIX}{request_id}"


def taken_key(worker_id: str) -> str:
    return f"{TAKEN_KEY_PREFIX}{worker_id}"


def publish(request_id: str, job: dict[str, Any] | None, *, caller_waits: bool) -> None:
    """Queue an invocation whose record is committed (`job` None: the worker reads it from
    the record)."""
    message = json.dumps({"id": request_id, "job": job, "reply": caller_waits})
    _client().lpush(QUEUE_KEY, message)


def wait_for_answer(request_id: str, timeout: float) -> dict[str, Any] | None:
    """The worker's answer to a synchronous invocation, or None if none came in `timeout`."""
    item = _client().blpop([reply_key(request_id)], timeout=max(timeout, 0.01))
    if item is None:
        return None
    answer: dict[str, Any] = json.loads(item[1])
    return answer


def purge() -> None:
    """Drop every queued message and answer (tests and benchmarks start clean)."""
    client = _client()
    keys = [QUEUE_KEY, *client.scan_iter(match=f"{TAKEN_KEY_PREFIX}*")]
    keys += list(client.scan_iter(match=f"{REPLY_KEY_PREFIX}*"))
    client.delete(*keys)


def requeue_taken_by_dead_workers(live_workers: Collection[str]) -> int:
    """Put back on the queue the messages of workers that are not alive; how many."""
    client = _client()
    moved = 0
    for key in client.scan_iter(match=f"{TAKEN_KEY_PREFIX}*"):
        worker_id = key.decode()[len(TAKEN_KEY_PREFIX) :]
        if worker_id in live_workers:
            continue
        count = 0
        while client.lmove(key, QUEUE_KEY, "RIGHT", "LEFT") is not None:
            count += 1
        if count:
            logger.warning("worker %s is gone: requeued %d messages it had taken", worker_id, count)
        moved += count
    return moved


def _keep_connection_if_usable() -> None:
    """Keep this thread's database connection for its next invocation (taking one from the
    pool and setting it up costs a round trip or two), unless an error broke it."""
    if connection.connection is not None and connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


class LaneConsumer:
    """A worker's threads taking invocations off the lane, each running one at a time."""

    def __init__(self, *, worker_id: str, threads: int, execute: Executor) -> None:
        self.worker_id = worker_id
        self._execute = execute
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._take_forever, name=f"lane-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop_taking(self) -> None:
        """Take no more messages; the ones taken run to their end."""
        self._stopping.set()

    def join(self) -> None:
        self.stop_taking()
        for thread in self._threads:
            thread.join()

    def _take_forever(self) -> None:
        taken = taken_key(self.worker_id)
        failures = 0
        while not self._stopping.is_set():
            try:
                message = _client().blmove(
                    QUEUE_KEY, taken, TAKE_BLOCK_SECONDS, src="RIGHT", dest="LEFT"
                )
                failures = 0
            except redis.RedisError:
                delay = REDIS_RETRY_DELAYS[min(failures, len(REDIS_RETRY_DELAYS) - 1)]
                failures += 1
                logger.warning("the lane's Redis does not answer; again in %.1f s", delay)
                self._stopping.wait(delay)
                continue
            if message is not None:
                # JSON as json.dumps writes it is ASCII: the text is the stored bytes.
                self._handle(message.decode() if isinstance(message, bytes) else message, taken)

    def _handle(self, message: str, taken: str) -> None:
        document = json.loads(message)
        request_id: str = document["id"]
        logger.info("invocation %s received", request_id)
        try:
            outcome = self._run(request_id, document.get("job"))
        finally:
            _keep_connection_if_usable()
        answered = isinstance(outcome, dict)
        self._finish(
            message, taken, request_id, outcome if answered and document["reply"] else None
        )
        logger.info("invocation %s %s", request_id, "succeeded" if answered else "ignored")

    def _run(self, request_id: str, job: dict[str, Any] | None) -> object:
        for delay in (*DATABASE_RETRY_DELAYS, None):
            try:
                return self._execute(request_id=request_id, job=job)
            except (OperationalError, InterfaceError):
                if delay is None:
                    logger.exception("invocation %s: the database stayed unreachable", request_id)
                    return None
                logger.warning(
                    "invocation %s: database unreachable; again in %d s", request_id, delay
                )
                connection.close()
                time.sleep(delay)
            except Exception:
                # Left queued for the sweeper, not on the taken list: a message that breaks
                # its worker must not come back each time a worker is declared dead.
                logger.exception("invocation %s could not be run", request_id)
                return None
        return None

    def _finish(self, message: str, taken: str, request_id: str, answer: object | None) -> None:
        for delay in (*REDIS_RETRY_DELAYS, None):
            try:
                pipe = _client().pipeline(transaction=False)
                if answer is not None:
                    key = reply_key(request_id)
                    pipe.rpush(key, json.dumps(answer))
                    pipe.expire(key, REPLY_TTL_SECONDS)
                pipe.lrem(taken, 1, message)
                pipe.execute()
                return
            except redis.RedisError:
                if delay is None:
                    # The caller sees the finished record when it next looks at it.
                    logger.exception("invocation %s: could not answer through Redis", request_id)
                    return
                time.sleep(delay)
