"""The execution-environment pool under pressure: the memory budget and LRU eviction, the
cold-start cap, burst coalescing, keep-alive, and concurrent use from worker threads.

Everything runs real functions through the real engine on the process backend, where each
environment's runtime is a child process of this one, so leaks are visible in /proc.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from celery import _state as celery_state
from django.db import connections

from invocations.environment_estimates import nth_availability
from invocations.environments import (
    EnvironmentCapacityError,
    EnvironmentPool,
    get_pool,
    shutdown_pool,
)
from invocations.function_snapshot import FunctionSnapshot
from invocations.models import Invocation
from invocations.sandboxes.process import ProcessSandboxBackend
from invocations.tests.helpers import invoke, make_function

QUICK = """
    def lambda_handler(event, context):
        return context.log_stream_name
"""
SLEEPY = """
    import time

    def lambda_handler(event, context):
        time.sleep(float(event.get("sleep", 0.8)))
        return context.log_stream_name
"""
FAILING = """
    def lambda_handler(event, context):
        raise ValueError("expected")
"""
EXITING = """
    import os

    def lambda_handler(event, context):
        os._exit(3)
"""


def _slow_start(record: Path) -> str:
    """A function whose init takes 0.4 s and writes down when it ran."""
    return f"""
    import time

    started = time.monotonic()
    time.sleep(0.4)
    with open({str(record)!r}, "a") as record:
        record.write(f"{{started}} {{time.monotonic()}}\\n")

    def lambda_handler(event, context):
        return "ready"
    """


@pytest.fixture
def pool_settings(settings):
    """A fresh pool for each test, built from the settings it chooses; none left after."""
    shutdown_pool()
    settings.STRATUS_EE_KEEP_ALIVE = 600
    settings.STRATUS_EE_MEMORY_BUDGET_MB = 4096
    settings.STRATUS_EE_MAX_CONCURRENT_COLD_STARTS = 4
    settings.STRATUS_EE_BURST_WAIT_MS = 100
    settings.STRATUS_EE_CAPACITY_WAIT = 10
    yield settings
    shutdown_pool()
    assert runtime_processes() == set()


def runtime_processes() -> set[int]:
    """The function runtimes running as children of this process (process backend)."""
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == me and state != "Z" and b"awslambdaric" in command:
            found.add(int(entry.name))
    return found


def in_threads(calls: list[Callable[[], Invocation]]) -> list[Invocation]:
    """Run the calls at the same moment, one thread each, as a worker's threads would."""
    start = threading.Barrier(len(calls))
    results: list[Invocation | BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = calls[index]()
        except BaseException as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert all(isinstance(result, Invocation) for result in results)
    return results  # type: ignore[return-value]


class Background:
    """A call running in its own thread while the test goes on."""

    def __init__(self, call: Callable[[], Invocation]) -> None:
        self.result: Invocation | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,))
        self._thread.start()

    def _run(self, call: Callable[[], Invocation]) -> None:
        try:
            self.result = call()
        except BaseException as exc:
            self.result = exc
        finally:
            connections.close_all()

    def join(self) -> Invocation:
        self._thread.join(timeout=30)
        assert isinstance(self.result, Invocation), self.result
        return self.result


class Watch:
    """Samples the pool and the runtime processes until stopped; keeps the peaks."""

    def __init__(self) -> None:
        self.peak_memory_mb = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        # A daemon, so that a test failing before stop() does not hold the run open.
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pool = get_pool()
        while not self._stop.wait(0.002):
            committed = pool.stats()["memory_committed_mb"]
            self.peak_memory_mb = max(self.peak_memory_mb, committed)
            self.peak_processes = max(self.peak_processes, len(runtime_processes()))

    def stop(self) -> Watch:
        self._stop.set()
        self._thread.join()
        return self


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "timed out waiting for the pool"
        time.sleep(0.005)


def busy_and_started(count: int) -> Callable[[], bool]:
    def check() -> bool:
        stats = get_pool().stats()
        return stats["busy_environments"] == count and stats["cold_starts_in_flight"] == 0

    return check


def snapshot_of(memory_size: int) -> FunctionSnapshot:
    return FunctionSnapshot(
        function_id=1,
        owner_id=1,
        name="big",
        arn="arn:aws:lambda:us-east-1:000000000000:function:big",
        version="$LATEST",
        revision_id="r1",
        runtime="python3.11",
        handler="lambda_function.lambda_handler",
        memory_size=memory_size,
        timeout=3,
        ephemeral_storage=512,
        code_sha256_hex="0" * 64,
        code_sha256="",
    )


@pytest.mark.django_db
def test_eviction_picks_the_least_recently_used_idle_environment(user, pool_settings, caplog):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    first = make_function(user, QUICK, name="first")
    second = make_function(user, QUICK, name="second")
    third = make_function(user, QUICK, name="third")
    first_stream = invoke(first).response
    second_stream = invoke(second).response
    assert invoke(first).response == first_stream  # first is now the more recently used

    with caplog.at_level(logging.INFO, logger="invocations.environments"):
        invoke(third)

    stats = get_pool().stats()
    assert stats["evictions"] == 1 and stats["memory_committed_mb"] == 256
    assert len(runtime_processes()) == 2
    assert invoke(first).response == first_stream
    eviction = [r.getMessage() for r in caplog.records if "evicting" in r.getMessage()]
    assert len(eviction) == 1 and "of second (128 MB" in eviction[0]
    assert "to make room for third (128 MB)" in eviction[0]
    assert invoke(second).response != second_stream


@pytest.mark.django_db(transaction=True)
def test_a_busy_environment_is_never_evicted_even_when_least_recently_used(user, pool_settings):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    sleepy = make_function(user, SLEEPY, name="sleepy")
    idle = make_function(user, QUICK, name="idle")
    newcomer = make_function(user, QUICK, name="newcomer")
    sleepy_stream = invoke(sleepy, '{"sleep": 0}').response
    idle_stream = invoke(idle).response
    running = Background(lambda: invoke(sleepy, '{"sleep": 0.8}'))
    until(busy_and_started(1))

    invoke(newcomer)

    stats = get_pool().stats()
    assert stats["evictions"] == 1 and stats["memory_waits"] == 0
    assert stats["busy_environments"] == 1, "the busy environment was not taken away"
    finished = running.join()
    assert finished.status == "succeeded" and finished.response == sleepy_stream
    assert invoke(idle).response != idle_stream


@pytest.mark.django_db(transaction=True)
def test_a_cold_start_waits_for_room_and_proceeds_when_an_environment_is_released(
    user, pool_settings
):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    sleepers = [make_function(user, SLEEPY, name=f"sleepy-{n}") for n in range(2)]
    newcomer = make_function(user, QUICK, name="newcomer")
    running = [Background(partial(invoke, f, '{"sleep": 0.8}')) for f in sleepers]
    until(busy_and_started(2))
    watch = Watch()

    started = time.monotonic()
    late = invoke(newcomer)
    waited = time.monotonic() - started

    assert late.status == "succeeded" and late.init_duration_ms is not None
    assert waited > 0.3, "it cannot have started before a sleeper finished"
    assert all(background.join().status == "succeeded" for background in running)
    watch.stop()
    stats = get_pool().stats()
    assert stats["memory_waits"] == 1 and stats["evictions"] == 1
    assert watch.peak_memory_mb <= 256 and watch.peak_processes <= 2


@pytest.mark.django_db(transaction=True)
def test_capacity_error_when_nothing_frees_up_in_time(user, pool_settings):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 128
    pool_settings.STRATUS_EE_CAPACITY_WAIT = 0.3
    sleepy = make_function(user, SLEEPY, name="sleepy")
    newcomer = make_function(user, QUICK, name="newcomer")
    running = Background(lambda: invoke(sleepy, '{"sleep": 1.5}'))
    until(busy_and_started(1))

    started = time.monotonic()
    refused = invoke(newcomer)

    assert time.monotonic() - started < 1.0
    assert refused.status == "failed"
    assert "no room for a 128 MB execution environment after 0.3 s" in refused.error_message
    assert get_pool().stats()["capacity_errors"] == 1
    assert running.join().status == "succeeded"


def test_a_function_larger_than_the_whole_budget_is_refused_at_once():
    pool = EnvironmentPool(ProcessSandboxBackend(), keep_alive=60, memory_budget_mb=256)
    try:
        with pytest.raises(EnvironmentCapacityError, match="needs 512 MB, more than"):
            pool.acquire(snapshot_of(512), timeout=5)
        assert pool.stats()["capacity_errors"] == 1
    finally:
        pool.shutdown()


@pytest.mark.django_db(transaction=True)
def test_at_most_the_cap_of_environments_start_at_once(user, pool_settings, tmp_path):
    pool_settings.STRATUS_EE_MAX_CONCURRENT_COLD_STARTS = 2
    record = tmp_path / "inits"
    functions = [make_function(user, _slow_start(record), name=f"slow-{n}") for n in range(6)]

    finished = in_threads([partial(invoke, f) for f in functions])

    assert all(invocation.status == "succeeded" for invocation in finished)
    spans = [tuple(map(float, line.split())) for line in record.read_text().splitlines()]
    assert len(spans) == 6
    overlap = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert overlap == 2
    stats = get_pool().stats()
    assert stats["peak_cold_starts_in_flight"] == 2 and stats["cold_start_waits"] >= 4


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_one_function_starts_only_the_environments_the_work_needs(user, pool_settings):
    function = make_function(user, QUICK, name="bursty")

    finished = in_threads([lambda: invoke(function) for _ in range(20)])

    assert all(invocation.status == "succeeded" for invocation in finished)
    streams = {invocation.log_stream_name for invocation in finished}
    stats = get_pool().stats()
    assert stats["cold_starts"] == len(streams) <= 5
    assert stats["warm_hits"] == 20 - len(streams)
    assert stats["burst_hits"] >= 1


@pytest.mark.django_db(transaction=True)
def test_invocations_of_a_slow_function_start_their_own_environments_without_waiting(
    user, pool_settings
):
    function = make_function(user, SLEEPY, name="slow-burst")
    invoke(function, '{"sleep": 0.3}')  # measured: each invocation holds its EE ~0.3 s

    finished = in_threads([lambda: invoke(function, '{"sleep": 0.3}') for _ in range(3)])

    assert all(invocation.status == "succeeded" for invocation in finished)
    assert len({invocation.log_stream_name for invocation in finished}) == 3
    stats = get_pool().stats()
    assert stats["cold_starts"] == 3 and stats["burst_waits"] == 0


@pytest.mark.django_db
def test_idle_environments_stop_after_the_keep_alive(user, pool_settings):
    pool_settings.STRATUS_EE_KEEP_ALIVE = 0.4
    function = make_function(user, QUICK)
    first = invoke(function)
    assert invoke(function).response == first.response
    assert len(runtime_processes()) == 1

    until(lambda: get_pool().stats()["memory_committed_mb"] == 0, timeout=5)

    assert runtime_processes() == set()
    stats = get_pool().stats()
    assert stats["expired"] == 1 and stats["environments"] == 0
    assert invoke(function).init_duration_ms is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_mixed_load_keeps_the_budget_and_leaks_nothing(user, pool_settings):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 640
    pool_settings.STRATUS_EE_MAX_CONCURRENT_COLD_STARTS = 2
    kinds = {
        "quick": (make_function(user, QUICK, name="quick"), "succeeded"),
        "large": (make_function(user, QUICK, name="large", memory_size=256), "succeeded"),
        "sleepy": (make_function(user, SLEEPY, name="sleepy"), "succeeded"),
        "failing": (make_function(user, FAILING, name="failing"), "failed"),
        "exiting": (make_function(user, EXITING, name="exiting"), "failed"),
    }
    order = ["quick", "large", "sleepy", "failing", "exiting", "quick", "large", "quick"]
    watch = Watch()

    def worker(offset: int) -> Callable[[], Invocation]:
        def run() -> Invocation:
            last = None
            for step in range(6):
                function, expected = kinds[order[(offset + step) % len(order)]]
                last = invoke(function, '{"sleep": 0.05}')
                assert last.status == expected, (function.name, last.error_message)
            assert last is not None
            return last

        return run

    in_threads([worker(offset) for offset in range(8)])
    watch.stop()

    pool = get_pool()
    stats = pool.stats()
    assert stats["cold_starts"] + stats["warm_hits"] == 48
    assert stats["evictions"] >= 1 and stats["capacity_errors"] == 0
    assert watch.peak_memory_mb <= 640
    assert watch.peak_processes <= 640 // 128
    assert stats["busy_environments"] == 0 and stats["waiting_acquires"] == 0
    idle = [environment for group in pool._idle.values() for environment in group]
    assert stats["memory_committed_mb"] == sum(environment.memory_mb for environment in idle)
    assert len(runtime_processes()) == stats["idle_environments"]

    shutdown_pool()

    assert runtime_processes() == set()
    assert pool.stats()["environments"] == 0 and pool.stats()["memory_committed_mb"] == 0


def test_waiters_are_served_in_turn_by_the_environments_about_to_be_free():
    assert nth_availability([], 0.01, 1) is None
    assert nth_availability([0.004, 0.001], 0.01, 1) == 0.001
    assert nth_availability([0.004, 0.001], 0.01, 2) == 0.004
    assert nth_availability([0.004, 0.001], 0.01, 3) == pytest.approx(0.011)
    assert nth_availability([0.004, 0.001], 0.01, 4) == pytest.approx(0.014)


@pytest.fixture(autouse=True)
def _no_pool_left_running() -> Iterator[None]:
    yield
    shutdown_pool()


@pytest.fixture(autouse=True)
def _celery_join_guard_restored() -> Iterator[None]:
    """Eager tasks running in several threads at once race on Celery's process-wide "inside
    a task" flag (each saves and restores it), which can leave it set and make later
    result.get() calls refuse to run; put it back as it was."""
    before = celery_state.task_join_will_block()  # type: ignore[attr-defined]
    yield
    celery_state._set_task_join_will_block(before)  # type: ignore[attr-defined]
