"""A bounded load run through the Lambda API on the Docker sandbox, beside its floor.

    .venv/bin/python -m bench.load [--clients N] [--duration S] [--event-share F]

Uses DATABASE_URL / CELERY_BROKER_URL (default: the local Postgres and Redis), starts a
real Celery worker (Docker sandbox backend) and a gunicorn web process on loopback, creates
a function through the API and warms it, then:
  * floor: N threads each doing a bare Celery no-op round trip (apply_async + get) for S s;
  * two identical load phases: N clients on keep-alive connections, each signing its
    requests with SigV4, invoking for S s (a share F of them Event, the rest
    RequestResponse): throughput, p50/p99 per kind, throttles and errors;
  * after each phase: every accepted invocation is in Postgres and terminal (zero lost);
    the worker's open files (the second phase must not grow them beyond what the
    environments its pool added hold) and memory;
  * the execution environment containers: those of the worker while it runs, none after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratus_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")

DOCKER_BACKEND = "invocations.sandboxes.docker.DockerSandboxBackend"
FUNCTION_NAME = "bench-load"
# 1,024 MB: about 0.58 of a vCPU per environment (Lambda's share), so a container's CPU
# quota is not what limits the run.
DEFAULT_MEMORY_MB = 1024
SETTLE_TIMEOUT_SECONDS = 120


def main(argv: list[str] | None = None) -> int:
    import django

    django.setup()
    from console.management.commands.run_stratus import WEB_THREADS, WORKER_CONCURRENCY

    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--event-share", type=float, default=0.1)
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB)
    # By default, what `make run` serves with.
    parser.add_argument("--web-threads", type=int, default=WEB_THREADS)
    parser.add_argument("--worker-concurrency", type=int, default=WORKER_CONCURRENCY)
    args = parser.parse_args(argv)

    from django.conf import settings
    from django.core.management import call_command

    from api.models import AccessKey
    from api.services import access_key_create
    from bench import load_checks, load_client, load_report, scenario, stack
    from bench.load_checks import CpuSample, ProcessUsage, containers_of, settle
    from console.selectors import account_for_user
    from invocations import lane

    scenario.prepare_database()
    lane.purge()
    if not load_checks.runtime_image_present():
        call_command("build_runtimes", verbosity=0)
    _, user, _ = scenario.bench_function()
    AccessKey.objects.filter(user=user).delete()
    key = access_key_create(user=user)
    credentials = load_client.Credentials(key.access_key.access_key_id, key.secret_access_key)
    port = stack.free_port()
    worker_env = {**os.environ, "STRATUS_SANDBOX_BACKEND": DOCKER_BACKEND}
    report = load_report.Report(
        clients=args.clients,
        duration=args.duration,
        setup=f"web threads {args.web_threads}, worker concurrency {args.worker_concurrency}, "
        f"{args.memory} MB functions, {args.event_share:.0%} Event",
    )
    with (
        stack.running(
            stack.worker_command(args.worker_concurrency), "load-worker.log", env=worker_env
        ) as worker,
        stack.running(stack.web_command(port, args.web_threads), "load-web.log") as web,
    ):
        scenario.wait_for_worker()
        stack.wait_for_http(f"http://127.0.0.1:{port}/accounts/login/")
        target = load_client.Target(port=port, function_name=FUNCTION_NAME)
        account_id = account_for_user(user).account_id
        load_client.create_function(
            target, credentials, account_id=account_id, memory_mb=args.memory
        )
        report.signing_us = load_client.signing_cost_us(target, credentials)
        # Warm-up: start the environments the load needs, and settle the processes.
        load_client.run_phase(target, credentials, args.clients, 5.0, args.event_share)
        settle(FUNCTION_NAME, timeout=SETTLE_TIMEOUT_SECONDS)
        database = str(settings.DATABASES["default"]["NAME"])

        def cpu() -> CpuSample:
            return CpuSample.take(worker_pid=worker.pid, web_pid=web.pid, database=database)

        before = cpu()
        report.floor = load_client.run_floor(args.clients, args.duration)
        report.floor_cpu = cpu().since(before)
        report.usage.append(("before", ProcessUsage.of(worker.pid)))
        for phase in (1, 2):
            started, before = time.time(), cpu()
            outcome = load_client.run_phase(
                target, credentials, args.clients, args.duration, args.event_share
            )
            report.phases.append(outcome)
            report.phase_cpu.append(cpu().since(before))
            report.checks.append(
                settle(
                    FUNCTION_NAME,
                    timeout=SETTLE_TIMEOUT_SECONDS,
                    since=started,
                    accepted=outcome.accepted_ids(),
                )
            )
            report.usage.append((f"after phase {phase}", ProcessUsage.of(worker.pid)))
        report.containers_running = containers_of(worker.pid)
    report.containers_after_stop = containers_of(worker.pid)
    print(report.render())
    return 0 if report.ok() else 1


if __name__ == "__main__":
    started_at = time.monotonic()
    code = main()
    print(f"benchmark took {time.monotonic() - started_at:.1f} s", file=sys.stderr)
    sys.exit(code)
