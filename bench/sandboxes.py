"""Execution environments: Docker sandbox vs its floors, measured in one run.

    .venv/bin/python -m bench.sandboxes [--cold N] [--warm N] [--idle N]

Runs the invocation engine in-process (no broker; the same path the worker takes) on a
Postgres database, so the figures are the sandbox's own cost plus the same recording work
for both backends. Needs root and a running Docker engine with the runtime image built
(`make runtimes`). Prints, each with p50 and p99:
  * floor: `docker run --rm IMAGE python3 -c pass`;
  * Docker cold start: the first invocation of a fresh function (a new container);
  * pre-warmed first invocation: the first invocation of a fresh function served by a
    stem cell (a generic container started ahead of demand and specialised), with its
    ratio to the floor against the target of 0.5;
  * Docker warm invocation, beside the process backend's warm invocation;
  * the worker's memory (RSS) with N idle warm Docker environments.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratus_bench")
os.environ.pop("CELERY_BROKER_URL", None)

DOCKER_BACKEND = "invocations.sandboxes.docker.DockerSandboxBackend"
PROCESS_BACKEND = "invocations.sandboxes.process.ProcessSandboxBackend"
HELLO = "def lambda_handler(event, context):\n    return event.get('key1')\n"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


PREWARMED_TARGET_RATIO = 0.5


def _use_backend(backend: str, *, prewarm: str = "") -> None:
    from django.conf import settings

    from invocations import environments
    from invocations.sandboxes import get_backend

    environments.shutdown_pool()
    settings.STRATUS_SANDBOX = {"BACKEND": backend, "OPTIONS": {}}
    settings.STRATUS_EE_PREWARM = prewarm
    get_backend.cache_clear()


def _wait_for_waiting_stem_cell(timeout: float = 30.0) -> None:
    """Until a stem cell's program is up and polling for its assignment, as it is when
    demand comes some time after the last one was taken."""
    from invocations import environments

    give_up = time.monotonic() + timeout
    pool = environments.get_pool()
    while pool.stats()["waiting_stem_cells"] < 1:
        if time.monotonic() > give_up:
            raise RuntimeError(f"no stem cell became ready: {pool.stats()}")
        time.sleep(0.01)


def _timed_invoke(function: object) -> tuple[float, object]:
    from invocations.services import invocation_submit, invocation_wait

    start = time.perf_counter()
    invocation = invocation_wait(
        invocation=invocation_submit(function=function, payload='{"key1": "v"}')  # type: ignore[arg-type]
    )
    elapsed = (time.perf_counter() - start) * 1000
    if invocation.status != "succeeded":
        raise RuntimeError(f"bench invocation failed: {invocation.response}")
    return elapsed, invocation


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandboxes")
    parser.add_argument("--cold", type=int, default=20)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--idle", type=int, default=50)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from bench.scenario import prepare_database
    from bench.stats import percentile, summary
    from console.celery import app as celery_app
    from functions.models import Function
    from functions.services import function_create
    from invocations import environments
    from invocations.runtimes import image_for

    celery_app.conf.task_always_eager = True
    prepare_database()
    call_command("build_runtimes", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-sandboxes")
    Function.objects.filter(owner=user).delete()

    def fresh_function(name: str) -> Function:
        return function_create(
            owner=user, name=name, role=None, files={"lambda_function.py": HELLO}
        )

    floor = []
    image = image_for("python3.11")
    for _ in range(args.cold):
        start = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", image, "python3", "-c", "pass"], check=True)
        floor.append((time.perf_counter() - start) * 1000)

    _use_backend(PROCESS_BACKEND)
    process_function = fresh_function("bench-process")
    _timed_invoke(process_function)
    process_warm = [_timed_invoke(process_function)[0] for _ in range(args.warm)]

    _use_backend(DOCKER_BACKEND)
    cold, init = [], []
    for i in range(args.cold):
        elapsed, invocation = _timed_invoke(fresh_function(f"bench-cold-{i}"))
        cold.append(elapsed)
        init.append(invocation.init_duration_ms)  # type: ignore[attr-defined]
    docker_function = fresh_function("bench-docker")
    _timed_invoke(docker_function)
    docker_warm = [_timed_invoke(docker_function)[0] for _ in range(args.warm)]

    _use_backend(DOCKER_BACKEND, prewarm="python3.11:128=1")
    prewarmed, prewarmed_init = [], []
    for i in range(args.cold):
        function = fresh_function(f"bench-prewarmed-{i}")
        _wait_for_waiting_stem_cell()
        elapsed, invocation = _timed_invoke(function)
        prewarmed.append(elapsed)
        prewarmed_init.append(invocation.init_duration_ms)  # type: ignore[attr-defined]
    stem_stats = environments.get_pool().stats()
    if stem_stats["stem_hits"] != args.cold or stem_stats["cold_starts"] != 0:
        raise RuntimeError(f"not every first invocation was served by a stem cell: {stem_stats}")
    _use_backend(DOCKER_BACKEND)

    environments.shutdown_pool()
    rss_before = _rss_mb()
    for i in range(args.idle):
        _timed_invoke(fresh_function(f"bench-idle-{i}"))
    idle = environments.get_pool().stats()
    rss_after = _rss_mb()
    environments.shutdown_pool()

    print(f"Execution environments ({args.cold} cold, {args.warm} warm, {args.idle} idle)")
    print(summary("floor: docker run --rm IMAGE python3 -c pass", floor))
    print(summary("docker: cold start (first invocation)", cold))
    print(summary("docker: init duration of those", init))
    print(summary("docker: pre-warmed first invocation (stem)", prewarmed))
    print(summary("docker: init duration of those", prewarmed_init))
    ratio = percentile(prewarmed, 0.5) / percentile(floor, 0.5)
    verdict = "met" if ratio <= PREWARMED_TARGET_RATIO else "NOT met"
    print(
        f"pre-warmed first invocation p50 / docker run floor p50 = {ratio:.2f} "
        f"(target <= {PREWARMED_TARGET_RATIO}: {verdict}); "
        f"vs cold start p50: {percentile(prewarmed, 0.5) / percentile(cold, 0.5):.2f}"
    )
    print(summary("process backend: warm invocation", process_warm))
    print(summary("docker: warm invocation", docker_warm))
    print(
        f"worker RSS with {args.idle} idle warm Docker environments: {rss_after:.0f} MB "
        f"({rss_after - rss_before:+.0f} MB for them); pool: {idle}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
