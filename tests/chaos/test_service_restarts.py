"""Redis and Postgres restarted under Stratus: every accepted invocation ends exactly once."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

from tests.chaos.stack import Driver, PostgresServer, RedisServer, Stack, assert_nothing_lost

QUEUED_INVOCATIONS = 500


def test_a_redis_restart_with_500_queued_invocations_loses_none(
    stack: Stack, driver: Driver, redis: RedisServer
):
    name = driver("setup", "redis-restart")
    with stack.scheduler(), stack.worker("consumer", concurrency=8) as worker:
        # Paused, so that all 500 are still queued in the broker when it restarts; resumed,
        # it finds its connection gone and has to reconnect and go on consuming.
        worker.send_signal(signal.SIGSTOP)
        accepted = driver("submit", name, QUEUED_INVOCATIONS, stack.event())
        # Redis keeps nothing on disk here: the restart empties the queue.
        redis.restart()
        restarted_at = time.monotonic()
        queued_at_restart = sum(r.status == "queued" for r in stack.records(name).values())
        worker.send_signal(signal.SIGCONT)
        stack.wait_until_terminal(name, accepted, timeout=150)
        recovered_in = time.monotonic() - restarted_at

    assert len(accepted) == queued_at_restart == QUEUED_INVOCATIONS
    assert_nothing_lost(stack, name, accepted, succeeded=set(accepted))
    assert all(stack.runs(request_id) == 1 for request_id in accepted)
    print(f"500 queued invocations lost by Redis all ended {recovered_in:.1f} s after its restart")


def test_a_postgres_restart_under_load_loses_no_accepted_invocation(
    stack: Stack, driver: Driver, chaos_postgres: PostgresServer
):
    name = driver("setup", "postgres-restart")
    with stack.scheduler(), stack.worker("one", concurrency=4), stack.worker("two", concurrency=4):
        load = driver("load", name, 9)
        time.sleep(3)
        chaos_postgres.stop(mode="fast")
        time.sleep(2)
        chaos_postgres.start()
        restarted_at = datetime.now(tz=UTC)
        outcome = driver("wait", load, 60)
        accepted = outcome["accepted"]
        stack.wait_until_terminal(name, accepted, timeout=120)

    # Accepted before and after the outage (a request during it waited or was refused).
    assert len(accepted) > 20
    assert stack.accepted_since(name, restarted_at) > 5, "the web side did not recover"
    assert_nothing_lost(stack, name, accepted, succeeded=set(accepted))
    print(f"{len(accepted)} accepted, {outcome['refused']} refused while Postgres was down")
