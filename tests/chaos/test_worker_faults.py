"""A worker killed or stopped while it runs invocations: nothing accepted is lost.

An asynchronous invocation runs again on another worker and succeeds once; a synchronous
caller gets a clear error promptly instead of waiting out its timeout."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from invocations.tasks import DRAIN_TIMED_OUT_EXIT_STATUS
from tests.chaos.stack import Driver, Stack, assert_nothing_lost, wait_until

WORKER_LOST = "the worker running this invocation stopped before it finished"
# Long enough that the first attempt is still running when the worker goes; a second
# attempt (the event's runs file exists then) does not sleep.
FIRST_RUN_SLEEP = 60


def _start_both(stack: Stack, driver: Driver, name: str, **event: object) -> tuple[str, str]:
    """An asynchronous and a synchronous invocation, both running when this returns."""
    [async_id] = driver("submit", name, 1, stack.event(**event))
    sync_id = driver("invoke", name, stack.event(**event))
    wait_until(
        lambda: stack.runs(async_id) == 1 and stack.runs(sync_id) == 1,
        timeout=30,
        what="both functions to start",
    )
    return async_id, sync_id


def test_sigkill_mid_invocation_retries_async_and_fails_sync_with_a_clear_error(
    stack: Stack, driver: Driver
):
    name = driver("setup", "sigkill")
    with stack.scheduler():
        with stack.worker("doomed") as doomed:
            async_id, sync_id = _start_both(stack, driver, name, first_sleep=FIRST_RUN_SLEEP)
            left_behind = stack.runtimes_of(doomed.pid)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            killed_at = time.monotonic()
        with stack.worker("successor"):
            outcome = driver("wait", sync_id, 60)
            noticed_after = time.monotonic() - killed_at
            records = stack.wait_until_terminal(name, [async_id, sync_id], timeout=60)
            # The successor removed what the dead worker's environments left running.
            wait_until(
                lambda: not any(_alive(pid) for pid in left_behind),
                timeout=10,
                what="the orphaned runtimes to be killed",
            )

    assert outcome["status"] == "failed", outcome
    assert outcome["error_type"] == "ServiceException"
    assert WORKER_LOST in outcome["error_message"]
    # Worker declared lost (3 s), a sweep (1 s), the caller's look at the record (1 s) and
    # the successor's start: far from the invocation's timeout (120 s).
    assert noticed_after < 20
    assert_nothing_lost(stack, name, [async_id, sync_id], succeeded={async_id})
    assert records[async_id].attempts == 2
    assert stack.runs(async_id) == 2
    assert stack.runs(sync_id) == 1, "a synchronous invocation must not run again by itself"
    assert len(left_behind) == 2
    print(f"the synchronous caller had its error {noticed_after:.1f} s after the SIGKILL")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its (dead) parent's init to reap it.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sigterm_drains_the_running_invocations_before_the_worker_exits(
    stack: Stack, driver: Driver
):
    name = driver("setup", "drain")
    with stack.scheduler():
        with stack.worker("draining", concurrency=2) as draining:
            async_id, sync_id = _start_both(stack, driver, name, sleep=3)
            # Accepted while both threads are busy: they wait in the broker.
            waiting = driver("submit", name, 3, stack.event())
            draining.send_signal(signal.SIGTERM)
            assert draining.wait(timeout=30) == 0
            outcome = driver("wait", sync_id, 10)
            drained = stack.records(name)
        with stack.worker("next"):
            stack.wait_until_terminal(name, waiting, timeout=30)

    assert outcome["status"] == "succeeded", outcome
    assert drained[async_id].status == "succeeded"
    assert drained[async_id].attempts == 1
    assert all(drained[request_id].status == "queued" for request_id in waiting)
    # The drained ones were acknowledged: their messages did not come back.
    handed_over = (stack.workdir / "worker-next.log").read_text()
    assert async_id not in handed_over and sync_id not in handed_over
    accepted = [async_id, sync_id, *waiting]
    assert_nothing_lost(stack, name, accepted, succeeded=set(accepted))
    assert all(stack.runs(request_id) == 1 for request_id in accepted)


def test_a_drain_that_runs_out_of_time_hands_the_invocations_back(stack: Stack, driver: Driver):
    name = driver("setup", "drain-bound")
    with stack.scheduler():
        with stack.worker("slow", STRATUS_WORKER_DRAIN_TIMEOUT="2") as slow:
            async_id, sync_id = _start_both(stack, driver, name, first_sleep=FIRST_RUN_SLEEP)
            slow.send_signal(signal.SIGTERM)
            assert slow.wait(timeout=30) == DRAIN_TIMED_OUT_EXIT_STATUS
        with stack.worker("next"):
            outcome = driver("wait", sync_id, 30)
            records = stack.wait_until_terminal(name, [async_id, sync_id], timeout=30)

    assert outcome["status"] == "failed", outcome
    assert WORKER_LOST in outcome["error_message"]
    assert_nothing_lost(stack, name, [async_id, sync_id], succeeded={async_id})
    assert records[async_id].attempts == 2
    assert stack.runs(sync_id) == 1
