"""The same message delivered twice never gives a second run or a second success: while the
first delivery runs it, after it finished, and for a synchronous caller who is waiting."""

from __future__ import annotations

import re
from pathlib import Path

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
