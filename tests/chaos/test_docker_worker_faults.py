"""A worker on the Docker backend killed in the middle of invocations: the same promises as on
the process backend, and nothing of the dead worker is left on the host once the next worker
on it has started (its containers, and the scratch volumes they had as /tmp)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from bench.load_checks import containers_of
from invocations.liveness import WORKER_LOST_MESSAGE
from invocations.sandboxes import DOCKER_BACKEND
from invocations.sandboxes.docker import WORKER_LABEL
from tests.chaos.stack import Driver, Stack, assert_nothing_lost, wait_until

# How long the first attempts run: long enough to be killed in the middle of, short enough
# that the retry (which runs only until the same moment) does not make the test slow.
HOLD_SECONDS = 10
# The kill comes at least this long before the first attempts would have ended.
KILL_MARGIN_SECONDS = 3


def _scratch_root(stack: Stack) -> Path:
    return stack.workdir / "var" / "sandboxes" / "docker-scratch"


def _scratch_folders(stack: Stack, worker_pid: int) -> list[Path]:
    """The worker's folder of scratch volumes and output pipes (named by pid and start time)."""
    return list(_scratch_root(stack).glob(f"{worker_pid}-*"))


def _holding(stack: Stack, worker_pid: int) -> list[str]:
    """Request ids of the runs the worker's environments started (the handler's marks in
    their /tmp), one entry a run."""
    return sorted(
        mark.name.removeprefix("running-")
        for folder in _scratch_folders(stack, worker_pid)
        for mark in folder.glob("*/running-*")
        for _ in mark.read_text().splitlines()
    )


def test_sigkill_of_a_docker_worker_retries_async_fails_sync_and_leaves_no_container(
    stack: Stack, driver: Driver
):
    name = driver("setup", "docker-sigkill")
    with stack.scheduler():
        with stack.worker("doomed", STRATUS_SANDBOX_BACKEND=DOCKER_BACKEND) as doomed:
            hold_until = time.time() + HOLD_SECONDS
            event = json.dumps({"hold_until": hold_until})
            [async_id] = driver("submit", name, 1, event)
            sync_id = driver("invoke", name, event)
            wait_until(
                lambda: _holding(stack, doomed.pid) == sorted([async_id, sync_id]),
                timeout=HOLD_SECONDS - KILL_MARGIN_SECONDS,
                what="both functions to run in their containers",
            )
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            killed_at = time.monotonic()
        assert time.time() < hold_until - KILL_MARGIN_SECONDS / 2, "killed too late"
        left_by_the_kill = containers_of(doomed.pid)
        with stack.worker("successor", STRATUS_SANDBOX_BACKEND=DOCKER_BACKEND) as successor:
            # The successor removed what the dead worker left as it started.
            containers_left = containers_of(doomed.pid)
            folders_left = _scratch_folders(stack, doomed.pid)
            outcome = driver("wait", sync_id, 60)
            noticed_after = time.monotonic() - killed_at
            records = stack.wait_until_terminal(name, [async_id, sync_id], timeout=60)
            reruns = _holding(stack, successor.pid)

    assert outcome["status"] == "failed", outcome
    assert outcome["error_type"] == "ServiceException"
    assert WORKER_LOST_MESSAGE in outcome["error_message"]
    # Worker declared lost (3 s), a sweep (1 s), the caller's look at the record (1 s) and
    # the successor's start: far from the invocation's timeout (120 s).
    assert noticed_after < 20
    assert_nothing_lost(stack, name, [async_id, sync_id], succeeded={async_id})
    assert records[async_id].attempts == 2
    assert records[async_id].worker.split(":")[1] == str(successor.pid)
    # The event ran once more, on the successor; the synchronous invocation did not.
    assert reruns == [async_id]
    # Its two running functions at least (and the stem cells it kept warm) outlived it: the
    # engine does not remove a dead worker's containers by itself.
    assert left_by_the_kill >= 2
    assert containers_left == 0, f"{containers_left} containers labelled {WORKER_LABEL} remain"
    assert folders_left == []
    print(f"the synchronous caller had its error {noticed_after:.1f} s after the SIGKILL")
