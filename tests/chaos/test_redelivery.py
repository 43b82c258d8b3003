"""The same message delivered twice never gives a second run or a second success: while the
first delivery runs it, after it finished, and for a synchronous caller who is waiting."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import psycopg

from tests.chaos.stack import Driver, Stack, assert_nothing_lost, wait_until


def _count(log: Path, request_id: str, event: str) -> int:
    return len(re.findall(rf"invocation {request_id} {event}", log.read_text()))


def test_a_message_delivered_twice_runs_once(stack: Stack, driver: Driver):
    name = driver("setup", "twice")
    log = stack.workdir / "worker-only.log"
    with stack.worker("only"):
        [async_id] = driver("submit", name, 1, stack.event(sleep=2))
        sync_id = driver("invoke", name, stack.event(sleep=2))
        both = (async_id, sync_id)
        wait_until(lambda: all(stack.runs(rid) == 1 for rid in both), timeout=30, what="runs")
        # While the first delivery runs it.
        for request_id in both:
            driver("publish", request_id)
        outcome = driver("wait", sync_id, 60)
        records = stack.wait_until_terminal(name, list(both), timeout=30)
        # After it finished.
        for request_id in both:
            driver("publish", request_id)
        wait_until(
            lambda: all(_count(log, rid, "(succeeded|ignored)") == 3 for rid in both),
            timeout=30,
            what="every delivery to be handled",
        )
        after = stack.records(name)

    assert outcome["status"] == "succeeded", outcome
    assert after == records, "a later delivery changed a finished record"
    assert_nothing_lost(stack, name, list(both), succeeded=set(both))
    assert all(records[rid].attempts == 1 for rid in both)
    assert all(stack.runs(rid) == 1 for rid in both)
    assert all(_count(log, rid, "received") == 3 for rid in both)
    assert all(_count(log, rid, "succeeded") == 1 for rid in both)


def _claims_waiting(stack: Stack) -> int:
    """Workers' claims of a record waiting for a lock on it."""
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE %s",
            ["%UPDATE%invocations_invocation%"],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_delivery_that_found_the_record_taken_does_not_take_it_back(stack: Stack, driver: Driver):
    """Three deliveries of an event in one worker: the first finds the record not yet due,
    while a later one claims it and runs it; a third comes once the first has left. Neither
    the first nor the third may take the running claim for one of this worker's own that a
    database error cut short."""
    name = driver("setup", "overtaken")
    log = stack.workdir / "worker-only.log"
    with stack.worker("only") as worker:
        # Stopped, so that the first delivery comes only once the record is held.
        worker.send_signal(signal.SIGSTOP)
        [request_id] = driver("submit", name, 1, stack.event(sleep=3))
        with psycopg.connect(stack.database_url) as holder:
            # Held by a write not yet committed, which makes it due a second from now: the
            # claims wait for it, and the first then finds the record not due.
            holder.execute(
                "UPDATE invocations_invocation SET next_attempt_at = "
                "clock_timestamp() + interval '1 second' WHERE request_id = %s",
                [request_id],
            )
            worker.send_signal(signal.SIGCONT)
            wait_until(lambda: _claims_waiting(stack) == 1, timeout=10, what="the first claim")
            time.sleep(1.2)
            driver("publish", request_id)
            wait_until(lambda: _claims_waiting(stack) == 2, timeout=10, what="the second claim")
            holder.commit()
        wait_until(
            lambda: (
                _count(log, request_id, "(succeeded|ignored)") >= 1
                or "taking back" in log.read_text()
            ),
            timeout=10,
            what="the first delivery to be handled",
        )
        driver("publish", request_id)
        wait_until(
            lambda: _count(log, request_id, "(succeeded|ignored)") == 3,
            timeout=30,
            what="every delivery to be handled",
        )
        records = stack.wait_until_terminal(name, [request_id], timeout=10)

    assert "taking back" not in log.read_text()
    assert stack.runs(request_id) == 1
    assert_nothing_lost(stack, name, [request_id], succeeded={request_id})
    assert records[request_id].attempts == 1
    assert _count(log, request_id, "succeeded") == 1
