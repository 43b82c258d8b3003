"""Warm Test-invocation latency end to end, beside the floor measured in the same run.

    make bench            (or: .venv/bin/python -m bench [--invocations N])

Uses DATABASE_URL / CELERY_BROKER_URL (default: the local Postgres and Redis), starts a
real Celery worker and a gunicorn web process on loopback, and measures:
  * floor: a bare Celery no-op task round trip on the same broker;
  * service: invocation_submit + invocation_wait from Python (no HTTP);
  * console: the Test button's HTTP POST, request in, rendered result out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratus_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--invocations", type=int, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    from bench import scenario, stack
    from bench.console_test import measure as measure_console_test
    from bench.stats import percentile, summary

    scenario.prepare_database()
    function, user, password = scenario.bench_function()
    port = stack.free_port()
    with (
        stack.running(stack.worker_command(), "worker.log"),
        stack.running(stack.web_command(port), "web.log"),
    ):
        scenario.wait_for_worker()
        stack.wait_for_http(f"http://127.0.0.1:{port}/accounts/login/")
        n = args.invocations
        floor = scenario.measure_celery_round_trip(n)
        service = scenario.measure_service_invocations(function, n)
        console = measure_console_test(port, function, user.username, password, n)

    print(f"Stratus warm invocation benchmark ({n} each, after warm-up)")
    print(summary("floor: bare Celery no-op round trip", floor))
    print(summary("service: submit + wait (no HTTP)", service))
    print(summary("console: Test button HTTP POST", console))
    ratio = percentile(console, 0.5) / percentile(floor, 0.5)
    print(f"console p50 / floor p50 = {ratio:.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    start = time.monotonic()
    code = main()
    print(f"benchmark took {time.monotonic() - start:.1f} s", file=sys.stderr)
    sys.exit(code)
