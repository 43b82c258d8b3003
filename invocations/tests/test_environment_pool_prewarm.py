"""Environments started ahead of demand, on the process backend: stem cells (generic
environments a new function's first invocation specialises instead of starting one) and
provisioned environments (initialised for one function version and kept).

The process backend runs the same stem program and Runtime API as the Docker backend, so
this is the pool's logic with real runtimes; the Docker side is in test_stem_cells.py.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from invocations.environments import (
    EnvironmentCapacityError,
    EnvironmentPool,
    get_pool,
    shutdown_pool,
)
from invocations.executor import ExecutionResult, InvocationRequest, execute
from invocations.sandboxes import get_backend
from invocations.sandboxes.process import ProcessSandboxBackend
from invocations.services import _snapshot
from invocations.stem_cells import StemShape, parse_prewarm
from invocations.tests.helpers import invoke, make_function

pytestmark = pytest.mark.django_db(transaction=True)

ENVIRONMENT = """
    import os, subprocess, sys

    def lambda_handler(event, context):
        child = subprocess.run(["env", "-0"], capture_output=True).stdout.decode()
        return {
            "environ": dict(os.environ),
            "child": dict(line.split("=", 1) for line in child.split("\\0") if line),
            "cwd": os.getcwd(),
            "path0": sys.path[0],
            "files": sorted(f for f in os.listdir(".") if f != "__pycache__"),
            "argv": sys.argv,
            "pid": os.getpid(),
        }
"""
QUICK = """
    def lambda_handler(event, context):
        return context.log_stream_name
"""
SLOW_INIT = """
    import os, time

    time.sleep(0.5)

    def lambda_handler(event, context):
        time.sleep(float(event.get("sleep", 0)))
        return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
"""
# Values that differ between two functions, or two environments of one function.
PER_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "TMPDIR",
    "_X_AMZN_TRACE_ID",
}


def runtime_processes() -> set[int]:
    """Runtimes and stem programs running as children of this process."""
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
        running = int(parent) == me and state != "Z"
        if running and (b"awslambdaric" in command or b"stratus_stem" in command):
            found.add(int(entry.name))
    return found


@pytest.fixture
def pool_settings(settings) -> Iterator[object]:
    shutdown_pool()
    settings.STRATUS_SANDBOX = {
        "BACKEND": "invocations.sandboxes.process.ProcessSandboxBackend",
        "OPTIONS": {},
    }
    get_backend.cache_clear()
    settings.STRATUS_EE_KEEP_ALIVE = 600
    settings.STRATUS_EE_MEMORY_BUDGET_MB = 4096
    settings.STRATUS_EE_MAX_CONCURRENT_COLD_STARTS = 4
    settings.STRATUS_EE_BURST_WAIT_MS = 100
    settings.STRATUS_EE_CAPACITY_WAIT = 10
    settings.STRATUS_EE_PREWARM = "python3.11:128=1"
    yield settings
    shutdown_pool()
    get_backend.cache_clear()
    assert runtime_processes() == set()


def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"timed out; pool: {get_pool().stats()}"
        time.sleep(0.01)


def stems_ready(count: int = 1) -> Callable[[], bool]:
    return lambda: get_pool().stats()["idle_stem_cells"] == count


def run(function, payload: str = "{}") -> ExecutionResult:
    """One invocation through the engine, without the record (to see ExecutionResult)."""
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    request = InvocationRequest(request_id=str(uuid.uuid4()), payload=payload.encode())
    return execute(get_pool(), snapshot, request)


def test_prewarm_setting_is_parsed():
    assert parse_prewarm("") == {}
    assert parse_prewarm("python3.11:128=2, python3.11:512:1024=1") == {
        StemShape("python3.11", 128): 2,
        StemShape("python3.11", 512, 1024): 1,
    }
    for wrong in ("python3.11=2", "python3.11:big=1", "python3.11:128", ":128=1", "p:128=-1"):
        with pytest.raises(ImproperlyConfigured):
            parse_prewarm(wrong)


def test_a_runtime_without_a_stem_program_gets_no_stem_cells(caplog):
    shapes = parse_prewarm("python3.11:128=1,nodejs22.x:128=1")

    with caplog.at_level(logging.WARNING, logger="invocations.environments"):
        pool = EnvironmentPool(
            ProcessSandboxBackend(), keep_alive=60, memory_budget_mb=1024, prewarm=shapes
        )
    try:
        assert pool.prewarm == {StemShape("python3.11", 128): 1}
        assert "no stem cells of nodejs22.x:128" in caplog.text
    finally:
        pool.shutdown()


def test_a_new_functions_first_invocation_specialises_a_stem_cell(user, pool_settings):
    until(stems_ready())
    stem_pids = runtime_processes()
    function = make_function(user, ENVIRONMENT, name="fresh")

    first = invoke(function)

    assert first.status == "succeeded", first.response
    assert first.init_duration_ms is not None and first.init_duration_ms > 0
    stats = get_pool().stats()
    assert stats["stem_hits"] == 1 and stats["cold_starts"] == 0
    seen = json.loads(first.response)
    # The runtime that served it is the stem cell's process: nothing was started for it.
    assert {seen["pid"]} == stem_pids
    assert seen["files"] == ["lambda_function.py"]
    assert seen["path0"] == seen["cwd"] == seen["environ"]["LAMBDA_TASK_ROOT"]
    assert seen["argv"][1:] == ["lambda_function.lambda_handler"]
    assert seen["argv"][0].endswith("awslambdaric/__main__.py")
    second = invoke(function)
    assert second.init_duration_ms is None and second.log_stream_name == first.log_stream_name
    until(stems_ready())
    assert get_pool().stats()["stem_starts"] == 2


def test_a_specialised_stem_cell_has_exactly_the_environment_of_a_cold_start(user, pool_settings):
    until(stems_ready())
    variables = {"GREETING": "hello", "PYTHONPATH": "/opt/extra", "PATH": "/opt/bin:/usr/bin"}
    from_stem = make_function(user, ENVIRONMENT, name="stem", environment=variables)
    cold = make_function(user, ENVIRONMENT, name="cold", environment=variables, memory_size=256)

    stem_seen = json.loads(invoke(from_stem).response)
    cold_seen = json.loads(invoke(cold).response)

    assert get_pool().stats()["stem_hits"] == 1 and get_pool().stats()["cold_starts"] == 1
    assert stem_seen["environ"].keys() == cold_seen["environ"].keys()
    for name, value in cold_seen["environ"].items():
        if name not in PER_ENVIRONMENT:
            assert stem_seen["environ"][name] == value, name
    assert stem_seen["environ"]["GREETING"] == "hello"
    assert stem_seen["environ"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert stem_seen["child"] == stem_seen["environ"]
    assert stem_seen["argv"][1:] == cold_seen["argv"][1:]


def test_other_memory_sizes_and_start_time_variables_cold_start(user, pool_settings):
    until(stems_ready())
    larger = make_function(user, QUICK, name="larger", memory_size=256)
    seeded = make_function(user, QUICK, name="seeded", environment={"PYTHONHASHSEED": "1"})

    assert invoke(larger).status == "succeeded"
    assert invoke(seeded).status == "succeeded"

    stats = get_pool().stats()
    assert stats["stem_hits"] == 0 and stats["cold_starts"] == 2
    assert stats["idle_stem_cells"] == 1


def test_an_idle_stem_cell_is_evicted_before_a_warm_environment(user, pool_settings):
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 384
    warm = make_function(user, QUICK, name="warm")
    until(stems_ready())
    warm_stream = invoke(warm).response  # 128 MB warm + 128 MB stem cell
    # The stem cell is newer than the warm EE, but it goes first.
    newcomer = make_function(user, QUICK, name="newcomer", memory_size=256)

    assert invoke(newcomer).status == "succeeded"

    stats = get_pool().stats()
    assert stats["stem_evictions"] == 1 and stats["evictions"] == 1
    assert invoke(warm).response == warm_stream
    assert stats["idle_stem_cells"] == 0 and stats["memory_committed_mb"] == 384


def test_keep_alive_does_not_stop_stem_cells(user, pool_settings):
    pool_settings.STRATUS_EE_KEEP_ALIVE = 0.3
    until(stems_ready())
    function = make_function(user, QUICK, name="quick", memory_size=256)
    invoke(function)

    until(lambda: get_pool().stats()["expired"] == 1)
    time.sleep(0.4)

    stats = get_pool().stats()
    assert stats["idle_stem_cells"] == 1 and stats["stem_starts"] == 1
    assert len(runtime_processes()) == 1


def test_a_dead_stem_cell_is_replaced(user, pool_settings):
    pool_settings.STRATUS_EE_KEEP_ALIVE = 0.4
    until(stems_ready())
    (pid,) = runtime_processes()

    os.kill(pid, 9)

    until(lambda: get_pool().stats()["stem_deaths"] == 1)
    until(stems_ready())
    assert runtime_processes() != {pid}
    function = make_function(user, QUICK, name="after")
    assert invoke(function).status == "succeeded"
    assert get_pool().stats()["stem_hits"] == 1


def test_a_stem_cell_found_dead_when_taken_gives_way_to_a_cold_start(user, pool_settings):
    until(stems_ready())
    (pid,) = runtime_processes()
    os.kill(pid, 9)
    until(lambda: not runtime_processes())

    invocation = invoke(make_function(user, QUICK, name="unlucky"))

    assert invocation.status == "succeeded", invocation.response
    stats = get_pool().stats()
    # Served by a cold start, or by the dead one's replacement if that was ready first.
    assert stats["stem_failures"] == 1
    assert stats["stem_hits"] + stats["cold_starts"] == 1


# --- provisioned concurrency --------------------------------------------------------------


def test_provisioned_environments_are_initialised_ahead_and_served_first(user, pool_settings):
    pool_settings.STRATUS_EE_PREWARM = ""
    pool_settings.STRATUS_EE_KEEP_ALIVE = 0.3
    function = make_function(user, SLOW_INIT, name="provisioned")
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    pool = get_pool()

    pool.set_provisioned(snapshot, 2)
    until(lambda: pool.provisioned_status() == {snapshot.pool_key: (2, 2)})
    time.sleep(0.5)  # longer than the keep-alive: provisioned EEs stay

    started = time.monotonic()
    result = run(function)
    elapsed = time.monotonic() - started

    assert result.succeeded and json.loads(result.response) == "provisioned-concurrency"
    assert result.provisioned and result.init_duration_ms is None
    assert elapsed < 0.4, "its 0.5 s init ran before the invocation"
    stats = pool.stats()
    assert stats["provisioned_hits"] == 1 and stats["cold_starts"] == 0
    assert stats["provisioned_environments"] == 2 and stats["expired"] == 0


def test_invocations_beyond_the_provisioned_ones_get_on_demand_environments(user, pool_settings):
    pool_settings.STRATUS_EE_PREWARM = ""
    function = make_function(user, SLOW_INIT, name="spill")
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    pool = get_pool()
    pool.set_provisioned(snapshot, 1)
    until(lambda: pool.provisioned_status() == {snapshot.pool_key: (1, 1)})

    results: list[ExecutionResult] = []

    def call() -> None:
        try:
            results.append(run(function, '{"sleep": 0.6}'))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    kinds = sorted((r.provisioned, json.loads(r.response)) for r in results)
    assert kinds == [(False, "on-demand"), (True, "provisioned-concurrency")]
    on_demand = next(r for r in results if not r.provisioned)
    assert on_demand.init_duration_ms is not None
    assert pool.provisioned_status() == {snapshot.pool_key: (1, 1)}


def test_provisioned_environments_are_never_evicted_and_count_against_the_budget(
    user, pool_settings
):
    pool_settings.STRATUS_EE_PREWARM = ""
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    pool_settings.STRATUS_EE_CAPACITY_WAIT = 0.3
    function = make_function(user, QUICK, name="kept", memory_size=256)
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    pool = get_pool()
    pool.set_provisioned(snapshot, 1)
    until(lambda: pool.provisioned_status() == {snapshot.pool_key: (1, 1)})
    assert pool.stats()["memory_committed_mb"] == 256

    refused = invoke(make_function(user, QUICK, name="other"))

    assert refused.status == "failed" and "no room for a 128 MB" in refused.error_message
    assert pool.provisioned_status() == {snapshot.pool_key: (1, 1)}
    with pytest.raises(EnvironmentCapacityError, match="do not fit"):
        pool.set_provisioned(snapshot, 2)


def test_provisioning_evicts_idle_environments_and_zero_releases_them(user, pool_settings):
    pool_settings.STRATUS_EE_PREWARM = ""
    pool_settings.STRATUS_EE_MEMORY_BUDGET_MB = 256
    idle = make_function(user, QUICK, name="idle")
    idle_stream = invoke(idle).response
    function = make_function(user, QUICK, name="kept", memory_size=256)
    snapshot = _snapshot(function, None, invoked_as="$LATEST")
    pool = get_pool()

    pool.set_provisioned(snapshot, 1)
    until(lambda: pool.provisioned_status() == {snapshot.pool_key: (1, 1)})
    assert pool.stats()["evictions"] == 1

    pool.set_provisioned(snapshot, 0)

    assert pool.provisioned_status() == {}
    until(lambda: pool.stats()["memory_committed_mb"] == 0)
    assert invoke(idle).response != idle_stream
    assert len(runtime_processes()) == 1


def test_a_function_whose_init_fails_is_not_provisioned_in_a_loop(user, pool_settings):
    pool_settings.STRATUS_EE_PREWARM = ""
    broken = make_function(user, "raise RuntimeError('no')\n", name="broken")
    snapshot = _snapshot(broken, None, invoked_as="$LATEST")
    pool = get_pool()

    pool.set_provisioned(snapshot, 1)
    until(lambda: pool.stats()["provisioned_failures"] == 1)
    time.sleep(0.5)

    assert pool.stats()["provisioned_failures"] == 1, "it waits before it tries again"
    assert pool.provisioned_status() == {snapshot.pool_key: (0, 1)}
    assert pool.stats()["memory_committed_mb"] == 0


@pytest.fixture(autouse=True)
def _no_pool_left_running() -> Iterator[None]:
    yield
    shutdown_pool()
